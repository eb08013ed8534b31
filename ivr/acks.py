"""Answers one process waits for from another: a family member's "press 1", delivered to the
escalation that waits for it, and the console saying a screen pop's card was sent to every
open operator's screen that shows it.

A family member's answer (key 1, or a call that ended without it) is recorded by whichever
engine process ran their call; the escalation waiting for it may run in another. The answer is
kept in Redis (a key per order and contact) and announced on a pub/sub channel, so a waiting
escalation moves on at once instead of polling. An answer in the same process wakes the waiter
directly, Redis or not. When the subscription is re-established every waiter reads its key
again, and every ``recheck_s`` regardless, so a missed announcement costs little.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

ACK_TTL_S = 3600
REDIS_TIMEOUT_S = 1.0
RECHECK_S = 15.0  # a missed announcement (Redis restarted) costs at most this
RECHECK = "?"  # not an answer: read the key again (the subscription was re-established)
RESUBSCRIBE_S = 1.0


class Acknowledgements:
    """``signal`` a family member's acknowledgement; ``wait`` for one, across processes."""

    def __init__(self, client: aioredis.Redis, prefix: str, recheck_s: float = RECHECK_S) -> None:
        self._client = client
        self._prefix = prefix
        self._recheck_s = recheck_s
        self._waiters: defaultdict[str, set[asyncio.Future[str]]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # set while answers from other processes arrive

    @property
    def channel(self) -> str:
        return f"{self._prefix}acks"

    def key(self, order_id: int, contact_id: int) -> str:
        return f"{self._prefix}ack:{order_id}:{contact_id}"

    def start(self) -> None:
        """Listen for acknowledgements made in other engine processes."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="acknowledgements")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def signal(self, order_id: int, contact_id: int, acknowledged: bool = True) -> None:
        """Record the contact's answer (key 1, or the call ended without it) and wake whoever
        waits for it, here or in another engine process."""
        await self.signal_key(self.key(order_id, contact_id), acknowledged)

    async def signal_key(self, key: str, acknowledged: bool = True) -> None:
        """Record the answer kept under ``key`` and wake whoever waits for it."""
        answer = "1" if acknowledged else "0"
        self._wake(key, answer)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                pipe = self._client.pipeline(transaction=False)
                pipe.set(key, answer, ex=ACK_TTL_S)
                pipe.publish(self.channel, f"{key}={answer}")
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("answer %s not shared through Redis: %s", key, exc)

    async def wait(self, order_id: int, contact_id: int, timeout_s: float) -> bool:
        """True once the contact acknowledged; False when their call ended without it, or
        after ``timeout_s`` real seconds with no answer."""
        return await self.wait_key(self.key(order_id, contact_id), timeout_s)

    async def wait_key(self, key: str, timeout_s: float) -> bool:
        """True once the answer under ``key`` is yes; False for a no, or after ``timeout_s``
        real seconds with none."""
        deadline = time.monotonic() + timeout_s
        loop = asyncio.get_running_loop()
        while True:
            answer: asyncio.Future[str] = loop.create_future()
            self._waiters[key].add(answer)  # before reading: an answer meanwhile still wakes it
            try:
                recorded = await self._recorded(key)
                if recorded is not None:
                    return recorded == "1"
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                try:
                    async with asyncio.timeout(min(remaining, self._recheck_s)):
                        result = await answer
                except TimeoutError:
                    continue
                if result != RECHECK:
                    return result == "1"
            finally:
                waiters = self._waiters[key]
                waiters.discard(answer)
                if not waiters:
                    del self._waiters[key]

    def _wake_all(self, answer: str) -> None:
        for key in list(self._waiters):
            self._wake(key, answer)

    def _wake(self, key: str, answer: str) -> None:
        for waiter in self._waiters.get(key, ()):
            if not waiter.done():
                waiter.set_result(answer)

    async def _recorded(self, key: str) -> str | None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                value = await self._client.get(key)
        except (RedisError, OSError, TimeoutError):
            return None
        return value.decode() if isinstance(value, bytes) else value

    async def _listen(self) -> None:
        while True:
            try:
                async with self._client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.subscribed.set()
                    self._wake_all(RECHECK)  # whatever was announced while unsubscribed
                    while True:
                        message = await pubsub.get_message(timeout=RESUBSCRIBE_S)
                        if message is not None:
                            data = message.get("data")
                            text = data.decode() if isinstance(data, bytes) else str(data)
                            key, _, answer = text.rpartition("=")
                            self._wake(key, answer)
            except (RedisError, OSError, TimeoutError) as exc:
                self.subscribed.clear()
                log.warning("acknowledgement channel lost, resubscribing: %s", exc)
                await asyncio.sleep(RESUBSCRIBE_S)
