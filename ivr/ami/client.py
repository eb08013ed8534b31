"""The engine's AMI client: one supervised, self-healing connection to Asterisk.

Built on our own protocol (``AmiProtocol``) and event registry. The client
logs in (MD5 by default), checks the link with a Ping whose reply must come
within ``ping_timeout_s`` (a half-open link is closed and replaced; a link that delivered
anything meanwhile is alive, only busy, and waited for again), reconnects
after ``reconnect_delay_s``, and never re-sends an action that was in flight
when the link dropped: that action fails and its caller decides. An action that
never reached Asterisk fails with AmiNotSent, one whose fate is unknown with
AmiOriginateLost, whose OriginateResponse may still arrive on a later link
(``late_outcome``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ivr.logmask import masked_logger
from ivr.metrics import AMI_CONNECTED, AMI_DISCONNECTS

from .errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionLost,
    AmiError,
    AmiNoResponse,
    AmiNotSent,
    AmiOriginateLost,
    AmiTimeout,
)
from .events import EventHandler, EventRegistry
from .headers import variable_header
from .login import login
from .messages import AmiMessage, AmiResponse, OriginateOutcome
from .protocol import AmiProtocol, Reply

if TYPE_CHECKING:
    from ivr.config import AmiSettings

log = masked_logger("ivr.ami")

ConnectHook = Callable[["AmiClient"], Awaitable[None] | None]

LOGIN_GRACE_S = 1.5  # Asterisk waits 1 s before refusing a login
ORIGINATE_MARGIN_S = 30.0  # beyond the ring timeout, for dialplan work before the answer


class AmiClient:
    """Connection to Asterisk's manager interface, kept alive in the background."""

    def __init__(self, settings: AmiSettings, *, on_connect: ConnectHook | None = None) -> None:
        self._settings = settings
        self._on_connect = on_connect
        self._events = EventRegistry()
        self._protocol: AmiProtocol | None = None
        self._connected = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._ids = itertools.count(1)
        self._id_prefix = f"ivr-{os.getpid()}-{id(self) & 0xFFFF:04x}"
        self._late: dict[str, tuple[float, asyncio.Future[OriginateOutcome]]] = {}
        self.on_event("OriginateResponse", self._late_response)

    # ---- life cycle --------------------------------------------------------
    async def start(self) -> None:
        """Connect and log in; keep reconnecting in the background.

        Raises AmiAuthError if the first login is refused. If Asterisk cannot be
        reached yet, returns anyway and keeps trying (see ``wait_connected``).
        """
        if self._supervisor is not None:
            raise RuntimeError("AmiClient already started")
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._supervise(first), name="ami-supervisor")
        try:
            await first
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        """Log off politely if possible, then stop reconnecting and close the link."""
        self._closing = True
        protocol = self._protocol
        if protocol is not None and self.connected:
            with contextlib.suppress(AmiError, OSError, ValueError):
                await asyncio.wait_for(protocol.send({"Action": "Logoff"}), 1.0)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        self._teardown()
        await self._events.cancel_handlers()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def next_action_id(self) -> str:
        """A fresh ActionID for an Originate of this client."""
        return f"{self._id_prefix}-orig-{next(self._ids)}"

    async def wait_connected(self, timeout: float) -> None:
        """Wait until logged in; raise AmiTimeout after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            raise AmiTimeout(f"AMI not connected within {timeout:g}s") from None

    # ---- actions -----------------------------------------------------------
    async def action(
        self, name: str, headers: Mapping[str, Any] | None = None, *, timeout: float = 10.0
    ) -> AmiResponse | list[AmiMessage]:
        """Send one action and return its reply: one response, or a list for event lists.

        A list holds the response first, then the items, then the ``...Complete``
        event. An ``Error`` response is returned, not raised. Raises ValueError for
        unsafe headers (nothing is sent), AmiConnectionLost, AmiTimeout.
        """
        fields: dict[str, Any] = {"Action": name, **(headers or {})}
        return await self._request(fields, timeout)

    async def originate(
        self,
        *,
        channel: str,
        context: str,
        exten: str,
        priority: int = 1,
        caller_id: str,
        variables: Mapping[str, str],
        timeout_ms: int,
        action_id: str | None = None,
    ) -> OriginateOutcome:
        """Place a call (``Async: true``) and wait for its OriginateResponse.

        Raises AmiActionError if Asterisk refuses the action, AmiNotSent if it never
        reached Asterisk (link down, no reply at all), AmiOriginateLost if the link dropped
        after sending (the action is never re-sent; see ``late_outcome``), AmiTimeout.
        """
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be positive")
        action_id = action_id or self.next_action_id()
        fields: dict[str, Any] = {
            "Action": "Originate",
            "ActionID": action_id,
            "Async": "true",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "CallerID": caller_id,
            "Timeout": str(timeout_ms),
        }
        if variables:
            fields["Variable"] = [variable_header(k, v) for k, v in variables.items()]
        log.info("originate %s: %s -> %s,%s,%s", action_id, channel, context, exten, priority)
        try:
            result = await self._request(fields, timeout_ms / 1000 + ORIGINATE_MARGIN_S)
        except AmiOriginateLost:
            self._expect_late(action_id, timeout_ms / 1000 + ORIGINATE_MARGIN_S)
            raise
        if not isinstance(result, list):
            raise AmiActionError(f"Originate {action_id} refused: {result.get('Message')}",
                                 result)
        outcome = OriginateOutcome.from_event(result[-1])
        log.info("originate %s: %s (reason %d)", action_id, outcome.reason_name, outcome.reason)
        return outcome

    async def late_outcome(self, action_id: str, timeout: float) -> OriginateOutcome | None:
        """The OriginateResponse of an Originate whose link dropped (AmiOriginateLost), if
        a later link brings it within ``timeout`` seconds; else None."""
        entry = self._late.get(action_id)
        if entry is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(entry[1]), timeout)
        except TimeoutError:
            return None
        finally:
            self._late.pop(action_id, None)

    def _expect_late(self, action_id: str, horizon_s: float) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for stale in [key for key, (until, _) in self._late.items() if until < now]:
            self._late.pop(stale)[1].cancel()
        self._late[action_id] = (now + horizon_s, loop.create_future())

    def _late_response(self, event: AmiMessage) -> None:
        entry = self._late.get(event.action_id)
        if entry is not None and not entry[1].done():
            entry[1].set_result(OriginateOutcome.from_event(event))

    @property
    def handled_events(self) -> frozenset[str]:
        """The event names (or patterns) some handler listens to."""
        return self._events.patterns

    def on_event(self, name: str, handler: EventHandler) -> None:
        """Call ``handler`` for every event named ``name`` (fnmatch pattern; ``*`` = all).

        A handler that raises (or whose coroutine raises) is logged and ignored.
        """
        self._events.register(name, handler)

    # ---- internals ---------------------------------------------------------
    async def _request(self, fields: dict[str, Any], timeout: float) -> Reply:
        protocol = self._protocol
        if protocol is None or not self.connected:
            raise AmiNotSent("AMI is not connected")
        future = protocol.send(fields)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            answered = protocol.forget(future)
            error = AmiTimeout if answered else AmiNoResponse
            raise error(f"no reply to {fields['Action']} within {timeout:g}s") from None
        except asyncio.CancelledError:
            protocol.forget(future)
            raise

    async def _supervise(self, first: asyncio.Future[None]) -> None:
        settings = self._settings
        while not self._closing:
            try:
                protocol = await self._open()
            except AmiAuthError as exc:
                log.error("%s", exc)
                _settle(first, exc)
            except (OSError, AmiError, TimeoutError) as exc:
                log.warning(
                    "AMI %s:%s unreachable (%s); retrying in %gs",
                    settings.host, settings.port, exc or type(exc).__name__,
                    settings.reconnect_delay_s,
                )
                _settle(first, None)
            except Exception as exc:  # e.g. a secret that is not a valid header value
                log.exception("AMI connection attempt failed")
                _settle(first, exc)
            else:
                self._protocol = protocol
                self._connected.set()
                AMI_CONNECTED.set(1)
                log.info("AMI connected to %s:%s", settings.host, settings.port)
                _settle(first, None)
                await self._run_hook()
                reason = await self._keepalive(protocol)
                self._connected.clear()
                AMI_CONNECTED.set(0)
                AMI_DISCONNECTS.inc()
                log.warning("AMI link lost (%s); reconnecting in %gs", reason,
                            settings.reconnect_delay_s)
            self._teardown()
            await asyncio.sleep(settings.reconnect_delay_s)

    async def _open(self) -> AmiProtocol:
        settings = self._settings
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: AmiProtocol(self._events.dispatch, self._id_prefix),
                settings.host, settings.port),
            settings.ping_timeout_s,
        )
        try:
            await asyncio.wait_for(asyncio.shield(protocol.banner), settings.ping_timeout_s)

            async def send(fields: Mapping[str, str]) -> Reply:
                return await asyncio.wait_for(
                    protocol.send(dict(fields)), settings.ping_timeout_s + LOGIN_GRACE_S
                )

            await login(send, username=settings.username, secret=settings.secret,
                        auth=settings.auth, events=settings.events)
        except BaseException:
            protocol.close()
            raise
        return protocol

    async def _keepalive(self, protocol: AmiProtocol) -> str:
        """Ping every ``ping_interval_s``; return why the link is finished."""
        settings = self._settings
        while True:
            done, _ = await asyncio.wait({protocol.lost}, timeout=settings.ping_interval_s)
            if done:
                return f"closed: {protocol.lost.result() or 'by peer'}"
            try:
                future = protocol.send({"Action": "Ping"})
                while True:
                    received = protocol.received
                    try:
                        await asyncio.wait_for(asyncio.shield(future), settings.ping_timeout_s)
                        break
                    except TimeoutError:
                        if protocol.received == received:
                            raise
                        # the reply is behind events still arriving: the link is alive, the
                        # engine (or the PBX) is busy; closing it would lose those events
            except TimeoutError:
                protocol.forget(future)
                log.warning("AMI keepalive: no Ping reply and nothing else within %gs, "
                            "closing the link", settings.ping_timeout_s)
                if protocol.transport is not None:
                    protocol.transport.abort()
                return "keepalive timeout (half-open link)"
            except AmiConnectionLost as exc:
                return str(exc)

    async def _run_hook(self) -> None:
        if self._on_connect is None:
            return
        try:
            result = self._on_connect(self)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("AMI on_connect hook failed")

    def _teardown(self) -> None:
        self._connected.clear()
        AMI_CONNECTED.set(0)
        protocol, self._protocol = self._protocol, None
        if protocol is not None and not protocol.closed:
            protocol.close()
            if protocol.transport is not None:
                protocol.transport.abort()


def _settle(first: asyncio.Future[None], exc: BaseException | None) -> None:
    if first.done():
        return
    if exc is None:
        first.set_result(None)
    else:
        first.set_exception(exc)


