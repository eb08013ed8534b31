"""Live call state and the event stream that operator consoles read, kept in Redis.

Redis is never the system of record: if it is down, calls go on and the database keeps
everything; a warning is logged and the state can be rebuilt. Events for the consoles go
through the database's outbox (``ivr/outbox_relay.py``) when one is attached: ``publish``
then writes the row first and the stream entry carries its ``outbox_id``.

The requests of the calls of the moment go together (``ivr/micro_batch.py``), as the
arguments of one script (``ivr/live_scripts.py``): the client's work is per command, about
30 µs each, and about 0.5 µs a word, and a call makes three requests of eight commands
and about 60 words in all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from dispatch.console_events import CallEnded, CallStarted, ConsoleEvent, entry_fields
from dispatch.outbox import Announcement
from ivr.live_scripts import REQUESTS, Command, Commands, arguments
from ivr.metrics import STORAGE_ERRORS as STORAGE_ERROR_COUNT
from ivr.micro_batch import PayloadBatch

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 1.0
CALL_TTL_S = 6 * 3600
MOST_PER_SCRIPT = 256  # requests run by one script, at most


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
        self._batches: PayloadBatch[Commands, BaseException | None] = PayloadBatch(
            self._send, MOST_PER_SCRIPT)
        self._script_loaded = False

    @property
    def stream_key(self) -> str:
        return f"{self._prefix}events"

    @property
    def live_calls_key(self) -> str:
        return f"{self._prefix}calls:live"

    def call_key(self, uniqueid: str) -> str:
        return f"{self._prefix}call:{uniqueid}"

    async def call_started(self, event: CallStarted) -> None:
        key = self.call_key(event.uniqueid)
        fields = _pairs(_flat(event.model_dump(exclude={"uniqueid", "place"})))
        hashed: Commands = (("HSET", key, *fields),) if fields else ()
        await self._run((*hashed, ("EXPIRE", key, CALL_TTL_S),
                         ("SADD", self.live_calls_key, event.uniqueid),
                         self._append(entry_fields(event))))

    async def call_updated(self, uniqueid: str, fields: Mapping[str, Any]) -> None:
        await self._run((("HSET", self.call_key(uniqueid), *_pairs(_flat(fields))),))

    async def call_ended(self, event: CallEnded) -> None:
        await self._run((("DEL", self.call_key(event.uniqueid)),
                         ("SREM", self.live_calls_key, event.uniqueid),
                         self._append(entry_fields(event))))

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
        return await self._run((self._append(entry_fields(event)),))

    async def publish_entry(self, outbox_id: int, event: ConsoleEvent) -> bool:
        """XADD one outbox row (its id in the entry); True only once Redis has it."""
        return await self._run((self._append(entry_fields(event, outbox_id)),))

    async def trim_older_than(self, max_age_s: float) -> None:
        """Drop stream entries older than ``max_age_s`` (XTRIM MINID ~, by entry time)."""
        oldest = f"{int((time.time() - max_age_s) * 1000)}-0"
        await self._run((("XTRIM", self.stream_key, "MINID", "~", oldest),))

    async def server_id(self) -> str | None:
        """The run id of the Redis server behind the stream: a new one after a restart or
        a failover. None if Redis does not answer."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                info = await self._client.info("server")
        except (RedisError, OSError, TimeoutError):
            return None
        return str(info.get("run_id") or "") or None

    def _append(self, entry: dict[str, str]) -> Command:
        return ("XADD", self.stream_key, "MAXLEN", "~", self._maxlen, "*", *_pairs(entry))

    async def _run(self, commands: Commands) -> bool:
        """Send ``commands`` (in one script with the other calls' of the moment); False
        (counted, logged now and then) if Redis refused any of them."""
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                refused = await self._batches.submit(commands)
        except (RedisError, OSError, TimeoutError) as exc:
            refused = exc
        if refused is not None:
            self._count_error(refused)
            return False
        return True

    async def _send(self, batch: list[Commands]) -> list[BaseException | None]:
        """Every request of ``batch`` in one script; each request's first refusal, or None.
        A Redis that does not know the script (new, restarted, or a replica just promoted)
        is taught it, and the batch is sent again."""
        payload = arguments(batch)
        async with asyncio.timeout(REDIS_TIMEOUT_S):
            try:
                answers = await self._evaluate(payload)
            except NoScriptError:
                self._script_loaded = False
                answers = await self._evaluate(payload)
        return [ResponseError(_text(answer)) if answer else None for answer in answers]

    async def _evaluate(self, payload: str) -> list[bytes | str]:
        """The script's answers; loaded first, in the same round trip, where it may be
        missing."""
        if self._script_loaded:
            answers: list[bytes | str] = await self._client.execute_command(
                "EVALSHA", REQUESTS.sha, 0, payload)
            return answers
        pipe = self._client.pipeline(transaction=False)
        pipe.script_load(REQUESTS.body)
        pipe.execute_command("EVALSHA", REQUESTS.sha, 0, payload)
        _sha, answers = await pipe.execute()
        self._script_loaded = True
        return answers

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


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer


def _pairs(fields: Mapping[str, str]) -> list[str]:
    """``field, value, field, value...``: a hash's or a stream entry's arguments."""
    return [item for pair in fields.items() for item in pair]

