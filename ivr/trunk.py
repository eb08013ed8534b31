"""The trunk shared by priority: emergency call-backs and family alerts hold lines that the
other outbound calls leave free.

Every engine notes each emergency call-back and family alert it is ringing in one Redis
sorted set (``<prefix>trunk:priority``, scored by when the note lapses, so a crashed engine's
notes expire). They never wait for a line. The dispatcher's claims count them: vendor offers
and quality callbacks get the trunk's channels less those in use, and caring calls that
less ``[care] reserve_channels`` more, so a line is free for the next emergency. With Redis
down the notes are not kept and the count is 0: emergencies still go out at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError, TimeoutError)


class PriorityLines:
    """The high-priority calls in flight across every engine."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self.key = f"{prefix}trunk:priority"

    @contextlib.asynccontextmanager
    async def holding(self, ttl_s: float) -> AsyncIterator[None]:
        """Note one high-priority call for the block (at most ``ttl_s`` real seconds)."""
        member = uuid.uuid4().hex
        try:
            await self._client.zadd(self.key, {member: time.time() + ttl_s})
        except REDIS_ERRORS as exc:
            log.warning("priority call not noted (Redis unavailable): %s", exc)
        try:
            yield
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._client.zrem(self.key, member)

    async def in_use(self) -> int:
        """High-priority calls ringing now (0 if Redis does not answer)."""
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.zremrangebyscore(self.key, "-inf", time.time())
            pipe.zcard(self.key)
            _removed, count = await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("priority calls not counted (Redis unavailable): %s", exc)
            return 0
        return int(count)
