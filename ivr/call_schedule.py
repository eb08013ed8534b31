"""The schedule of outbound calls in Redis: a sorted set of attempt ids by due time.

Redis only holds a copy. The database holds every attempt, and ``refill`` puts the due ones
back after Redis restarted empty; while Redis is unreachable the database answers ``due``
directly. Two engines may read the same id: the database claim lets one of them dial.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 1.0
DueFromDatabase = Callable[[float], Awaitable[list[tuple[int, float]]]]


class CallSchedule:
    """Due attempt ids, from Redis when it answers, from the database when it does not."""

    def __init__(self, client: aioredis.Redis, prefix: str, from_database: DueFromDatabase
                 ) -> None:
        self._client = client
        self.key = f"{prefix}outbound:due"
        self._from_database = from_database
        self.redis_ok = True

    async def add(self, entries: Iterable[tuple[int, float]]) -> None:
        mapping = {str(attempt_id): due for attempt_id, due in entries}
        if mapping:
            await self._redis(self._client.zadd(self.key, mapping))

    async def remove(self, attempt_id: int) -> None:
        await self._redis(self._client.zrem(self.key, str(attempt_id)))

    async def due(self, now: float, limit: int = 200) -> list[int]:
        """Attempt ids due at ``now`` (clock seconds), earliest first."""
        found = await self._redis(
            self._client.zrangebyscore(self.key, "-inf", now, start=0, num=limit)
        )
        if found is None:
            return [attempt_id for attempt_id, _ in await self._from_database(now)][:limit]
        return [int(member) for member in found]

    async def refill(self, until: float) -> int:
        """Copy the database's attempts scheduled up to ``until`` into Redis (idempotent)."""
        entries = await self._from_database(until)
        await self.add(entries)
        return len(entries)

    async def _redis(self, command: Awaitable[object]) -> object | None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                result = await command
        except (RedisError, OSError, TimeoutError) as exc:
            if self.redis_ok:
                log.warning("Redis schedule unavailable, using the database: %s", exc)
            self.redis_ok = False
            return None
        if not self.redis_ok:
            log.info("Redis schedule back")
            self.redis_ok = True
        return result
