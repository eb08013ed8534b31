"""panoramisk's Manager with event dispatch that survives failing handlers and no replay.

The connection life cycle (connect, login, keepalive, reconnect) belongs to
``AmiClient``; this class keeps panoramisk's event registry and action sending.
"""

from __future__ import annotations

import asyncio
from typing import Any

from panoramisk.manager import Manager
from panoramisk.message import Message

from ivr.logmask import masked_logger

from .protocol import HardenedAMIProtocol

log = masked_logger("ivr.ami.events")


class HardenedManager(Manager):
    """Event registry and action sender bound to the current HardenedAMIProtocol."""

    def __init__(self, **config: Any) -> None:
        config.setdefault("log", masked_logger("ivr.ami.wire"))
        config.setdefault("encoding", "utf-8")
        super().__init__(protocol_factory=HardenedAMIProtocol, **config)
        self._handler_tasks: set[asyncio.Future[Any]] = set()
        self.on_lost: Any = None  # callable(exc) set by the owner

    def attach(self, protocol: HardenedAMIProtocol) -> None:
        """Make ``protocol`` the current connection (replaces Manager.connection_made)."""
        protocol.factory = self
        protocol.log = self.log
        protocol.config = self.config
        self.protocol = protocol
        self.responses = protocol.responses
        self._connected = True

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("HardenedManager connects through AmiClient, not Manager.connect")

    def ping(self) -> None:
        """Disabled: AmiClient runs a keepalive that checks the reply."""

    def connection_lost(self, exc: Exception | None) -> None:
        """Record the loss; reconnecting is the owner's job (no timer, no replay)."""
        self._connected = False
        self.authenticated = False
        if self.on_lost is not None:
            self.on_lost(exc)

    async def send_awaiting_actions(self, *_: Any) -> None:
        """Never replay actions after a reconnect (panoramisk did on FullyBooted)."""
        self.awaiting_actions.clear()

    def dispatch(self, event: Message) -> list[str]:
        """Call every matching handler; a failing handler is logged, never fatal."""
        matches = []
        event.manager = self
        for pattern, regexp in self.patterns:
            if regexp.match(event.event) is None:
                continue
            matches.append(pattern)
            for callback in list(self.callbacks[pattern]):
                try:
                    result = callback(self, event)
                except Exception:
                    log.exception("AMI handler %r failed on %s event", callback, event.event)
                    continue
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    task = asyncio.ensure_future(result)
                    self._handler_tasks.add(task)
                    task.add_done_callback(self._handler_done)
        return matches

    def _handler_done(self, task: asyncio.Future[Any]) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI async handler failed", exc_info=task.exception())

    def cancel_handlers(self) -> None:
        for task in list(self._handler_tasks):
            task.cancel()


