"""Live call state and the event stream that operator consoles read, kept in Redis.

Redis is never the system of record: if it is down, calls go on and the database keeps
everything; a warning is logged and the state can be rebuilt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

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

    @property
    def stream_key(self) -> str:
        return f"{self._prefix}events"

    @property
    def live_calls_key(self) -> str:
        return f"{self._prefix}calls:live"

    def call_key(self, uniqueid: str) -> str:
        return f"{self._prefix}call:{uniqueid}"

    async def call_started(self, uniqueid: str, fields: Mapping[str, Any]) -> None:
        await self._run(self._call_started(uniqueid, fields))

    async def call_updated(self, uniqueid: str, fields: Mapping[str, Any]) -> None:
        await self._run(self._client.hset(self.call_key(uniqueid), mapping=_flat(fields)))

    async def call_ended(self, uniqueid: str, fields: Mapping[str, Any]) -> None:
        await self._run(self._call_ended(uniqueid, fields))

    async def publish(self, kind: str, payload: Mapping[str, Any]) -> None:
        await self._run(self._publish(kind, payload))

    async def _call_started(self, uniqueid: str, fields: Mapping[str, Any]) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self.call_key(uniqueid), mapping=_flat(fields))
        pipe.expire(self.call_key(uniqueid), CALL_TTL_S)
        pipe.sadd(self.live_calls_key, uniqueid)
        pipe.xadd(self.stream_key, _event("call_started", {"uniqueid": uniqueid, **fields}),
                  maxlen=self._maxlen, approximate=True)
        await pipe.execute()

    async def _call_ended(self, uniqueid: str, fields: Mapping[str, Any]) -> None:
        pipe = self._client.pipeline(transaction=False)
        pipe.delete(self.call_key(uniqueid))
        pipe.srem(self.live_calls_key, uniqueid)
        pipe.xadd(self.stream_key, _event("call_ended", {"uniqueid": uniqueid, **fields}),
                  maxlen=self._maxlen, approximate=True)
        await pipe.execute()

    async def _publish(self, kind: str, payload: Mapping[str, Any]) -> None:
        await self._client.xadd(
            self.stream_key, _event(kind, payload), maxlen=self._maxlen, approximate=True
        )

    async def _run(self, operation: Any) -> None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                await operation
        except (RedisError, OSError, TimeoutError) as exc:
            self.errors += 1
            now = time.monotonic()
            if now - self._last_error_log > 10:
                self._last_error_log = now
                log.warning("Redis unavailable, live state not updated (%d errors): %s",
                            self.errors, exc)


def _flat(fields: Mapping[str, Any]) -> dict[str, str]:
    return {key: "" if value is None else str(value) for key, value in fields.items()}


def _event(kind: str, payload: Mapping[str, Any]) -> dict[str, str]:
    return {"type": kind, "data": json.dumps(payload, ensure_ascii=False, default=str)}
