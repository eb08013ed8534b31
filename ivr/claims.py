"""Leases in Redis: one engine process at a time does a job (an escalation), and a process
that dies mid-job loses its lease when the lease expires, so another one can take over."""

from __future__ import annotations

import logging
import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Extend the lease while it is ours, take it back if it lapsed with nobody taking it
# meanwhile (a process slowed down by load is still alive), never take another's; drop it only
# while it is ours. Each is one compare-and-set step.
_REFRESH = "local holder = redis.call('get', KEYS[1]) " \
           "if holder == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end " \
           "if not holder then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end " \
           "return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then " \
           "return redis.call('del', KEYS[1]) else return 0 end"


class Leases:
    """``claim`` / ``refresh`` / ``release`` of named leases owned by this process.

    Redis down: ``claim`` answers True (doing a job twice beats not doing it at all).
    """

    def __init__(self, client: Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self.owner = uuid.uuid4().hex

    def key(self, name: str) -> str:
        return f"{self._prefix}lease:{name}"

    async def claim(self, name: str, ttl_s: float) -> bool:
        try:
            return bool(await self._client.set(
                self.key(name), self.owner, nx=True, px=_ms(ttl_s)))
        except (RedisError, OSError) as exc:
            log.warning("lease %s not checked (Redis unavailable): %s", name, exc)
            return True

    async def refresh(self, name: str, ttl_s: float) -> bool:
        """Extend the lease (or take it back if it lapsed and is free); False if another
        process holds it now."""
        try:
            return bool(await self._client.eval(
                _REFRESH, 1, self.key(name), self.owner, _ms(ttl_s)))
        except (RedisError, OSError) as exc:
            log.warning("lease %s not refreshed (Redis unavailable): %s", name, exc)
            return True

    async def release(self, name: str) -> None:
        try:
            await self._client.eval(_RELEASE, 1, self.key(name), self.owner)
        except (RedisError, OSError) as exc:
            log.warning("lease %s not released (it will expire): %s", name, exc)

    async def release_many(self, names: list[str]) -> None:
        """Release ``names`` in one round trip (a stopping process's leases, all at once)."""
        if not names:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for name in names:
                pipe.eval(_RELEASE, 1, self.key(name), self.owner)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("%d leases not released (they will expire): %s", len(names), exc)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
