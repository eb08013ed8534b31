"""The FastAGI server: one asyncio task per call, bounded header reads, a safe outcome on error.

Whatever goes wrong inside the engine, the dialplan learns it through ``HOTLINE_ROUTE``: only
a flow that finished sets ``done``; anything else leaves the call to the operator queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from dispatch.calls import CallReason
from ivr.agi.environment import read_environment
from ivr.agi.errors import AgiError, AgiHangup, AgiProbe, AgiProtocolError
from ivr.agi.session import AgiSession
from ivr.config import AgiSettings
from ivr.dialplan_contract import ChannelVar
from ivr.fdlimit import RateLimitedLog, session_cap
from ivr.metrics import CALLS, CALLS_IN_PROGRESS, labelled
from ivr.tcp_service import TcpService

log = logging.getLogger(__name__)

Handler = Callable[[AgiSession], Awaitable[None]]

ROUTE_VARIABLE = ChannelVar.ROUTE
REASON_VARIABLE = ChannelVar.REASON
READ_LIMIT = 8192
FALLBACK_TIMEOUT_S = 5.0


async def route_to_operator(session: AgiSession, reason: CallReason) -> None:
    """Tell the dialplan to queue the call for a human, best effort and briefly."""
    if session.hungup:
        return
    with contextlib.suppress(AgiError, ValueError, TimeoutError, OSError):
        async with asyncio.timeout(FALLBACK_TIMEOUT_S):
            await session.set_variable(REASON_VARIABLE, reason)
            await session.set_variable(ROUTE_VARIABLE, "operator")


class FastAgiServer(TcpService):
    """Serves FastAGI requests, dispatching on the script name of ``agi://host/<script>``."""

    name = "FastAGI server"

    def __init__(self, routes: Mapping[str, Handler], settings: AgiSettings) -> None:
        super().__init__()
        self._routes = dict(routes)
        self._settings = settings
        self.max_sessions = session_cap(settings.max_sessions)
        self._slots = asyncio.Semaphore(self.max_sessions)
        self._refusals = RateLimitedLog(log)  # a flood of connections: a line per 10 s
        self._dropped = RateLimitedLog(log)
        self.sessions_refused = 0
        self.sessions_served = 0
        self.sessions_failed = 0
        self.probes = 0  # connections closed before a byte: health checks

    async def start(self) -> int:
        await self._listen(self._on_connection, self._settings.host, self._settings.port,
                           READ_LIMIT)
        log.info("FastAGI listening on %s:%d, at most %d sessions at once",
                 self._settings.host, self.port, self.max_sessions)
        return self.port

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop accepting calls; let calls in progress finish for ``grace_s``, then hand the
        rest to the operator queue (their dialplan continues with HOTLINE_ROUTE=operator)."""
        await self._stop(grace_s)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async with self._connection(writer):
            if self._slots.locked():
                self.sessions_refused += 1
                self._refusals.warning("FastAGI connections refused: %d sessions busy",
                                       self.max_sessions)
                return
            async with self._slots:
                await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            env = await read_environment(
                reader,
                timeout_s=self._settings.header_timeout_s,
                max_bytes=self._settings.header_max_bytes,
                whole=self._settings.header_max_bytes >= READ_LIMIT,
            )
        except AgiProbe:  # a load balancer's health check: the engine is up, nothing to log
            self.probes += 1
            return
        except (AgiProtocolError, AgiHangup) as exc:
            self.sessions_failed += 1
            self._dropped.warning("FastAGI connection dropped before a call started: %s", exc)
            return
        session = AgiSession(env, reader, writer, reply_timeout_s=self._settings.reply_timeout_s)
        handler = self._routes.get(env.script)
        if handler is None:
            log.error("no FastAGI route for script %r", env.script)
            CALLS.labels("unknown", "unknown_route").inc()
            await route_to_operator(session, CallReason.UNKNOWN_SCRIPT)
            return
        ended = "failed"
        in_progress = labelled(CALLS_IN_PROGRESS, env.script)
        in_progress.inc()
        try:
            await handler(session)
            self.sessions_served += 1
            ended = "served"
        except AgiHangup:
            self.sessions_served += 1
            ended = "served"
        except asyncio.CancelledError:
            ended = "engine_shutdown"
            await route_to_operator(session, CallReason.ENGINE_SHUTDOWN)
            raise
        except Exception:
            self.sessions_failed += 1
            log.exception("call flow %r failed on %s", env.script, env.uniqueid)
            await route_to_operator(session, CallReason.ENGINE_ERROR)
        finally:
            in_progress.dec()
            labelled(CALLS, env.script, ended).inc()
