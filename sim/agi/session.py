"""One AGI session (Asterisk's run_agi), independent of the transport (TCP or pipes).

The environment block goes out first; then each line from the engine is one command, answered
with Asterisk's reply rules. When the channel hangs up, the engine is told with an unsolicited
``HANGUP`` line (or SIGHUP for a script) between commands, and from then on most commands get
511. Asterisk waits for a silent engine forever; the simulator gives up after ``idle_timeout``
real seconds, closes the link and reports FAILURE, so that a stuck engine cannot hold a
simulated channel for ever.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import Deferred

from sim.agi.commands import execute

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.interpreter import Runner
    from sim.pbx import Pbx

log = logging.getLogger(__name__)

AGI_BUF_LEN = 8192
SUCCESS, FAILURE, NOTFOUND, HANGUP = "SUCCESS", "FAILURE", "NOTFOUND", "HANGUP"
_EOF = object()
_IDLE = object()
_WAKE = object()


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def signal_hangup(self) -> None: ...


@dataclass
class AgiRecord:
    """What the session did, for call results and benchmarks."""

    script: str
    status: str = ""
    commands: list[list[Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"script": self.script, "status": self.status, "commands": self.commands}


class AgiSession:
    def __init__(
        self,
        pbx: Pbx,
        chan: Channel,
        runner: Runner,
        transport: Transport,
        record: AgiRecord,
        idle_timeout: float,
    ) -> None:
        self.pbx = pbx
        self.chan = chan
        self.runner = runner
        self.transport = transport
        self.record = record
        self.idle_timeout = idle_timeout
        self.reactor = pbx.clock.reactor
        self.dead = chan.hungup
        self.need_hup = False
        self.eof = False
        self.busy = False
        self._buffer = b""
        self._lines: deque[tuple[bytes, float]] = deque()
        self._waiter: Deferred | None = None
        self.ctrl: Deferred | None = None
        self.replies: list[str] = []

    # transport side -----------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.ctrl is not None and not self.ctrl.called:
            self.ctrl.callback(None)
        self._buffer += data
        now = self.reactor.seconds()
        while True:
            nl = self._buffer.find(b"\n")
            if nl >= 0 and nl < AGI_BUF_LEN - 1:
                line, self._buffer = self._buffer[: nl + 1], self._buffer[nl + 1 :]
            elif len(self._buffer) >= AGI_BUF_LEN - 1:
                line = self._buffer[: AGI_BUF_LEN - 1]
                self._buffer = self._buffer[AGI_BUF_LEN - 1 :]
            else:
                break
            self._lines.append((line, now))
        self._wake()

    def connection_lost(self) -> None:
        if self._buffer:
            self._lines.append((self._buffer, self.reactor.seconds()))
            self._buffer = b""
        self.eof = True
        if self.ctrl is not None and not self.ctrl.called:
            self.ctrl.callback(None)
        self._wake()

    def _wake(self, token: object = None) -> None:
        if self._waiter is not None and not self._waiter.called:
            waiter, self._waiter = self._waiter, None
            waiter.callback(token)

    # output -------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        self.replies.append(text)
        self.transport.write(text.encode("utf-8"))

    def interruptible(self) -> Deferred:
        """A Deferred that fires if the engine writes while the current command runs."""
        self.ctrl = Deferred()
        return self.ctrl

    # the loop -----------------------------------------------------------------------------
    def _on_hangup(self) -> None:
        self.need_hup = True
        if not self.busy:
            self._wake(_WAKE)

    async def _next_line(self) -> object:
        while True:
            if self._lines:
                return self._lines.popleft()
            if self.eof:
                return _EOF
            if self.need_hup:
                return _WAKE
            self._waiter = Deferred()
            timer = self.reactor.callLater(self.idle_timeout, self._wake, _IDLE)
            try:
                token = await self._waiter
            finally:
                if timer.active():
                    timer.cancel()
            if token is _IDLE:
                return _IDLE
            if token is _WAKE:
                return _WAKE

    async def run(self, env: bytes) -> str:
        status = SUCCESS
        sighup = self.chan.get_var("AGISIGHUP")
        send_sighup = not (sighup is not None and sighup.strip().lower() in _FALSE)
        exit_on_hangup = checkcondition_true(self.chan.get_var("AGIEXITONHANGUP"))
        cancel = (lambda: None) if self.dead else self.chan.on_hangup(self._on_hangup)
        self.transport.write(env)
        replied_at = self.reactor.seconds()
        try:
            while True:
                if self.need_hup:
                    self.need_hup = False
                    if not self.dead:
                        self.dead = True
                        if status == SUCCESS:
                            status = HANGUP
                        if send_sighup:
                            self.transport.signal_hangup()
                        if exit_on_hangup:
                            break
                item = await self._next_line()
                if item is _WAKE:
                    continue
                if item is _EOF:
                    break
                if item is _IDLE:
                    log.warning("%s: engine sent nothing for %.1f s; closing the AGI link",
                                self.chan.name, self.idle_timeout)
                    if status == SUCCESS:
                        status = FAILURE
                    break
                assert isinstance(item, tuple)
                raw, received_at = item
                raw = raw.split(b"\x00", 1)[0]  # C string semantics, as fgets leaves it
                if not raw:
                    break
                if raw[:7].lower() == b"failure":
                    status = FAILURE
                    break
                latency_ms = round(max(0.0, received_at - replied_at) * 1000.0, 3)
                line = raw[:-1] if raw.endswith(b"\n") else raw
                command = line.decode("utf-8", errors="replace")
                self.busy = True
                self.replies = []
                try:
                    failed = await execute(self, command)
                finally:
                    self.busy = False
                    self.ctrl = None
                replied_at = self.reactor.seconds()
                first = self.replies[0].split("\n", 1)[0] if self.replies else ""
                self.record.commands.append([command, first, latency_ms])
                self.pbx.stats["agi_commands"] += 1
                if failed and (self.dead or not self.chan.hungup):
                    status = FAILURE
                if self.chan.hungup and not self.dead:
                    self.need_hup = True
        finally:
            cancel()
            if send_sighup and not self.eof:
                self.transport.signal_hangup()
            self.transport.close()
        return status


_FALSE = ("no", "false", "n", "f", "0", "off")


def checkcondition_true(value: str | None) -> bool:
    """ast_true: yes/true/y/t/1/on."""
    if value is None:
        return False
    return value.strip().lower() in ("yes", "true", "y", "t", "1", "on")


__all__ = ["FAILURE", "HANGUP", "NOTFOUND", "SUCCESS", "AgiRecord", "AgiSession", "Transport"]
