"""The simulator's AMI server: ``listen(pbx, reactor, port, users)``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory

from sim.events import Event
from sim.pbx import Pbx

from .actions import dispatch
from .event_filters import EventFilters
from .events import AmiEvent
from .framing import Request
from .perms import mask_of
from .session import AmiSession

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 30.0  # manager.conf authtimeout
FAILED_LOGIN_DELAY_S = 1.0


@dataclass(frozen=True)
class AmiUser:
    """One manager.conf user: secret, read/write permission classes and event filters."""

    secret: str
    read: set[str] = field(default_factory=set)
    write: set[str] = field(default_factory=set)
    filters: EventFilters = field(default_factory=EventFilters)

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("an AMI user needs a secret")

    @property
    def read_mask(self) -> int:
        return mask_of(self.read)

    @property
    def write_mask(self) -> int:
        return mask_of(self.write)


class AmiFactory(Factory):
    """Shared state of all sessions: the PBX, users, and event fan-out."""

    protocol = AmiSession

    def __init__(self, pbx: Pbx, reactor: Any, users: Mapping[str, AmiUser], *,
                 auth_timeout: float = AUTH_TIMEOUT_S,
                 failed_login_delay: float = FAILED_LOGIN_DELAY_S) -> None:
        self.pbx = pbx
        self.reactor = reactor
        self.users = {name.lower(): user for name, user in users.items()}
        self.auth_timeout = auth_timeout
        self.failed_login_delay = failed_login_delay
        self.sessions: set[AmiSession] = set()
        self.dispatcher: Callable[[AmiSession, Request], Deferred | None] = dispatch
        self.started = self.now()
        self._unsubscribe = pbx.events.subscribe(self._pbx_event)

    def buildProtocol(self, addr: Any) -> AmiSession:
        return AmiSession(self)

    def now(self) -> float:
        """Simulated epoch seconds (the simulator's clock runs the PBX)."""
        return self.pbx.clock.now()

    def elapsed(self) -> float:
        """Simulated seconds since the simulator started (the base of Channel.created_at)."""
        return self.pbx.clock.elapsed()

    def find_user(self, username: str) -> AmiUser | None:
        return self.users.get(username.lower())

    def broadcast(self, event: AmiEvent) -> None:
        """Send ``event`` to every session whose read permissions, event mask and user's
        event filters allow it."""
        for session in list(self.sessions):
            if session.wants(event):
                session.deliver(event.payload)

    def _pbx_event(self, event: Event) -> None:
        if self.sessions:
            self.broadcast(AmiEvent.of(event.name, event.privilege, event.headers))

    def stopFactory(self) -> None:
        self._unsubscribe()


def listen(pbx: Pbx, reactor: Any, port: int, users: dict[str, AmiUser],
           interface: str = "127.0.0.1", **options: float) -> IListeningPort:
    """Serve AMI on ``interface:port`` (0 = any free port). Options: auth_timeout,
    failed_login_delay (seconds; Asterisk's 30 and 1 by default)."""
    if not users:
        raise ValueError("the AMI server needs at least one user")
    factory = AmiFactory(pbx, reactor, users, **options)
    return reactor.listenTCP(port, factory, interface=interface)


__all__ = ["AmiFactory", "AmiUser", "listen"]
