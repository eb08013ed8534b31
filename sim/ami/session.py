"""One AMI client connection: banner, framing, login state, event delivery, back-pressure."""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from zope.interface import implementer

from .events import AmiEvent
from .framing import Request, RequestReader
from .wire import error

if TYPE_CHECKING:
    from .server import AmiFactory, AmiUser

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
MAX_BACKLOG_BYTES = 8 << 20  # a client that stops reading is dropped past this


@implementer(IPushProducer)
class AmiSession(Protocol):
    """Server side of one manager session (Asterisk's mansession)."""

    def __init__(self, factory: AmiFactory) -> None:
        self.factory = factory
        self.reader = RequestReader()
        self.user: AmiUser | None = None
        self.username = ""
        self.readperm = 0
        self.writeperm = 0
        self.send_events = 0  # no events until authenticated
        self.challenge = ""
        self.closing = False
        self.started = 0.0
        self._auth_timer: Any = None
        self._paused = False
        self._backlog: deque[bytes] = deque()
        self._backlog_bytes = 0
        self._in_action = False
        self._held_events: list[bytes] = []
        self._held_bytes = 0
        self._queued: deque[Request] = deque()

    @property
    def authenticated(self) -> bool:
        return self.user is not None

    @property
    def session_id(self) -> str:
        return f"0x{id(self):012x}"

    # ---- connection --------------------------------------------------------
    def connectionMade(self) -> None:
        self.started = self.factory.now()
        self.factory.sessions.add(self)
        self.transport.registerProducer(self, True)
        self.transport.write(BANNER)
        self._auth_timer = self.factory.reactor.callLater(
            self.factory.auth_timeout, self._auth_expired
        )

    def connectionLost(self, reason: Any = None) -> None:
        self.closing = True
        self.factory.sessions.discard(self)
        if self._auth_timer is not None and self._auth_timer.active():
            self._auth_timer.cancel()
        self._backlog.clear()

    def dataReceived(self, data: bytes) -> None:
        if self.closing:
            return
        self._queued.extend(self.reader.feed(data))
        self._run_queued()

    def _run_queued(self) -> None:
        while self._queued and not self._in_action and not self.closing:
            self._run(self._queued.popleft())

    def _run(self, request: Request) -> None:
        """Run one action. Like Asterisk, the session handles nothing else until it is done
        (a synchronous Originate blocks it), and events raised meanwhile come after the reply."""
        self._in_action = True
        result: Any = None
        try:
            result = self.factory.dispatcher(self, request)
        except Exception:
            log.exception("AMI action failed: %s", request.get("Action"))
            self.send(error(request, "Internal error"))
        if isinstance(result, Deferred) and not result.called:
            self.transport.pauseProducing()  # stop reading while blocked: bounded input
            result.addBoth(self._resume)
        else:
            self._finish()

    def _finish(self) -> None:
        self._in_action = False
        held, self._held_events, self._held_bytes = self._held_events, [], 0
        for payload in held:
            self.send(payload)

    def _resume(self, _: object) -> None:
        self._finish()
        if not self.closing:
            self.transport.resumeProducing()
            self._run_queued()

    def _auth_expired(self) -> None:
        if not self.authenticated and not self.closing:
            log.info("AMI client did not log in within %gs", self.factory.auth_timeout)
            self.close()

    # ---- state changes -----------------------------------------------------
    def logged_in(self, user: AmiUser, username: str) -> None:
        self.user = user
        self.username = username
        self.readperm = user.read_mask
        self.writeperm = user.write_mask
        if self._auth_timer is not None and self._auth_timer.active():
            self._auth_timer.cancel()

    def close(self, after: bytes = b"") -> None:
        """Stop reading, send ``after`` (if any), then close once the output is flushed."""
        if after:
            self.send(after)
        self.closing = True
        if not self._backlog:
            self.transport.loseConnection()

    # ---- output ------------------------------------------------------------
    def send(self, data: bytes) -> None:
        if self._paused or self._backlog:
            self._backlog.append(data)
            self._backlog_bytes += len(data)
            if self._backlog_bytes > MAX_BACKLOG_BYTES:
                self._overflow()
            return
        self.transport.write(data)

    def _overflow(self) -> None:
        log.warning("AMI client %s is not keeping up; dropping it", self.username or "?")
        self.closing = True
        self._backlog.clear()
        self._held_events.clear()
        self.transport.abortConnection()

    def wants(self, event: AmiEvent) -> bool:
        """Asterisk's rule: the session's event mask must cover all of the event's classes,
        and the user's eventfilter lines let it through."""
        return ((self.send_events & event.category) == event.category and not self.closing
                and (self.user is None or self.user.filters.passes(event)))

    def deliver(self, payload: bytes) -> None:
        """Send an event payload (after the reply of the action running, if any)."""
        if self._in_action:
            self._held_events.append(payload)
            self._held_bytes += len(payload)
            if self._held_bytes > MAX_BACKLOG_BYTES:
                self._overflow()
        else:
            self.send(payload)

    # ---- IPushProducer (the transport tells us when its buffer is full) -----
    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        while self._backlog and not self._paused:
            data = self._backlog.popleft()
            self._backlog_bytes -= len(data)
            self.transport.write(data)
        if self.closing and not self._backlog:
            self.transport.loseConnection()

    def stopProducing(self) -> None:
        self.closing = True
        self._backlog.clear()
