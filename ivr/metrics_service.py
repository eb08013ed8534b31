"""Serving the engine's metrics: ``/metrics`` under uvicorn in the engine's own event loop,
and the loop that reads the platform-wide gauges again every ``[metrics] refresh_s``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import uvicorn
from prometheus_client import make_asgi_app

from dispatch.open_alarms import emergency_backlog
from dispatch.spool_replay import pending_records
from ivr.config import MetricsSettings
from ivr.context import EngineContext
from ivr.metrics import OLDEST_EMERGENCY_SECONDS, OPEN_EMERGENCIES, REGISTRY, SPOOL_BACKLOG
from ivr.periodic import repeat
from ivr.storage_steps import STORAGE_ERRORS, describe

log = logging.getLogger(__name__)


async def refresh_gauges(ctx: EngineContext) -> None:
    """Open emergencies and the oldest one's age (the database), the spool backlog (the
    folder). A store that cannot be read leaves its gauge as it was."""
    try:
        async with ctx.sessions() as session:
            count, oldest = await emergency_backlog(session)
    except STORAGE_ERRORS as exc:  # a dead database must not stop the other gauges
        log.warning("metrics: open emergencies not read: %s", describe(exc))
    else:
        OPEN_EMERGENCIES.set(count)
        OLDEST_EMERGENCY_SECONDS.set(
            max(0.0, (ctx.now() - oldest).total_seconds()) if oldest is not None else 0.0)
    try:
        backlog = await asyncio.to_thread(pending_records, ctx.settings.spool.dir)
    except OSError as exc:
        log.warning("metrics: spool backlog not read: %s", exc)
    else:
        SPOOL_BACKLOG.set(len(backlog))


class _InLoopServer(uvicorn.Server):
    """uvicorn inside the engine's loop: the engine handles SIGTERM and SIGINT itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class MetricsServer:
    """``/metrics`` on ``[metrics] host:port`` and the gauges' refresh loop."""

    def __init__(self, ctx: EngineContext, settings: MetricsSettings) -> None:
        self.ctx = ctx
        self.settings = settings
        self.port = 0
        self._server: _InLoopServer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        from ivr.console.server import bind

        sock = bind(self.settings.host, self.settings.port)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(make_asgi_app(REGISTRY), log_level="warning",
                                access_log=False, server_header=False, lifespan="off")
        self._server = _InLoopServer(config)
        await refresh_gauges(self.ctx)
        self._tasks = [
            asyncio.create_task(self._server.serve(sockets=[sock]), name="metrics server"),
            asyncio.create_task(repeat(lambda: refresh_gauges(self.ctx),
                                       lambda: asyncio.sleep(self.settings.refresh_s),
                                       "metrics gauges"), name="metrics gauges")]
        log.info("metrics on http://%s:%d/metrics", self.settings.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        for task in self._tasks[1:]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
