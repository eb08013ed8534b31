"""Live call state and the event stream that operator consoles read, kept in Redis.

Redis is never the system of record: if it is down, calls go on and the database keeps
everything; a warning is logged and the state can be rebuilt. Events for the consoles go
through the database's outbox (``ivr/outbox_relay.py``) when one is attached: ``publish``
then writes the row first and the stream entry carries its ``outbox_id``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dispatch.console_events import CallEnded, CallStarted, ConsoleEvent, entry_fields
from dispatch.outbox import Announcement
from ivr.metrics import STORAGE_ERRORS as STORAGE_ERROR_COUNT

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 1.0
CALL_TTL_S = 6 * 3600


class LiveState:
    """Writes live call hashes (``<prefix>call:<uniqueid>``) and appends to ``<prefix>events``."""

    def __init__(self, client: aioredis.Redis, prefix: str = "hotline:", maxlen: int = 100_000):
        self._client = client
        self._prefix = prefix
        self._maxlen = maxlen
        self.errors = 0
        self._last_error_log = 0.0
        self.announcer: Callable[[ConsoleEvent], Awaitable[None]] | None = None
        # told the outbox id of each row ``publish_stored`` sent (the relay marks them)
        self.on_published: Callable[[int], None] | None = None

    @property
    def stream_key(self) -> str:
        return f"{self._prefix}events"

    @property
    def live_calls_key(self) -> str:
        return f"{self._prefix}calls:live"

    def call_key(self, uniqueid: str) -> str:
        return f"{self._prefix}call:{uniqueid}"

    async def call_started(self, event: CallStarted) -> None:
        await self._run(self._call_started(event))

    async def call_updated(self, uniqueid: str, fields: Mapping[str, Any]) -> None:
        await self._run(self._client.hset(self.call_key(uniqueid), mapping=_flat(fields)))

    async def call_ended(self, event: CallEnded) -> None:
        await self._run(self._call_ended(event))

    async def publish(self, event: ConsoleEvent) -> None:
        """An event for the consoles: through the outbox when one is attached, else straight
        to the stream (best effort)."""
        if self.announcer is not None:
            await self.announcer(event)
        else:
            await self.publish_direct(event)

    async def publish_stored(self, entry: Announcement) -> None:
        """An event whose outbox row was committed with what it announces: sent now; if Redis
        refuses, the relay publishes the row later."""
        if await self.publish_entry(entry.outbox_id, entry.event) and self.on_published:
            self.on_published(entry.outbox_id)

    async def publish_direct(self, event: ConsoleEvent) -> bool:
        """Straight to the stream, no outbox; True once Redis has it (else logged)."""
        return await self._run(self._client.xadd(self.stream_key, entry_fields(event),
                                                 maxlen=self._maxlen, approximate=True))

    async def publish_entry(self, outbox_id: int, event: ConsoleEvent) -> bool:
        """XADD one outbox row (its id in the entry); True only once Redis has it."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                await self._client.xadd(self.stream_key, entry_fields(event, outbox_id),
                                        maxlen=self._maxlen, approximate=True)
        except (RedisError, OSError, TimeoutError) as exc:
            self._count_error(exc)
            return False
        return True

    async def trim_older_than(self, max_age_s: float) -> None:
        """Drop stream entries older than ``max_age_s`` (XTRIM MINID ~, by entry time)."""
        oldest_ms = int((time.time() - max_age_s) * 1000)
        await self._run(self._client.xtrim(self.stream_key, minid=f"{oldest_ms}-0",
                                           approximate=True))

    async def _call_started(self, event: CallStarted) -> None:
        key = self.call_key(event.uniqueid)
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(key, mapping=_flat(event.model_dump(exclude={"uniqueid", "place"})))
        pipe.expire(key, CALL_TTL_S)
        pipe.sadd(self.live_calls_key, event.uniqueid)
        pipe.xadd(self.stream_key, entry_fields(event), maxlen=self._maxlen, approximate=True)
        await pipe.execute()

    async def _call_ended(self, event: CallEnded) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.delete(self.call_key(event.uniqueid))
        pipe.srem(self.live_calls_key, event.uniqueid)
        pipe.xadd(self.stream_key, entry_fields(event), maxlen=self._maxlen, approximate=True)
        await pipe.execute()

    async def _run(self, operation: Any) -> bool:
        """Await a Redis operation; False (counted, logged now and then) if Redis refused."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                await operation
        except (RedisError, OSError, TimeoutError) as exc:
            self._count_error(exc)
            return False
        return True

    def _count_error(self, exc: BaseException) -> None:
        self.errors += 1
        STORAGE_ERROR_COUNT.labels("redis").inc()
        now = time.monotonic()
        if now - self._last_error_log > 10:
            self._last_error_log = now
            log.warning("Redis unavailable, live state not updated (%d errors): %s",
                        self.errors, exc)


def _flat(fields: Mapping[str, Any]) -> dict[str, str]:
    return {key: "" if value is None else str(value) for key, value in fields.items()}

