"""A simulated channel: identity, state, variables, hangup, and the events they emit."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from sim import events as ev

if TYPE_CHECKING:
    from sim.parties import Party
    from sim.pbx import Pbx
    from sim.record import CallRecord

log = logging.getLogger(__name__)


class State(IntEnum):
    DOWN = 0
    RSRVD = 1
    OFFHOOK = 2
    DIALING = 3
    RING = 4
    RINGING = 5
    UP = 6
    BUSY = 7

    @property
    def desc(self) -> str:
        return _STATE_DESC[self]


_STATE_DESC = {
    State.DOWN: "Down", State.RSRVD: "Rsrvd", State.OFFHOOK: "OffHook", State.DIALING: "Dialing",
    State.RING: "Ring", State.RINGING: "Ringing", State.UP: "Up", State.BUSY: "Busy",
}


def var_key(name: str) -> str:
    """Variables are found without their inheritance prefix (``_`` or ``__``)."""
    if name.startswith("__"):
        return name[2:]
    if name.startswith("_"):
        return name[1:]
    return name


class Channel:
    """One leg of a call. Events go to the PBX's bus; waits end early on hangup."""

    def __init__(
        self,
        pbx: Pbx,
        name: str,
        tech: str,
        uniqueid: str,
        linkedid: str,
        *,
        context: str,
        exten: str,
        priority: int = 1,
        caller_num: str = "",
        caller_name: str = "",
        language: str = "en",
        state: State = State.DOWN,
        party: Party | None = None,
        dnid: str = "",
    ) -> None:
        self.pbx = pbx
        self.name = name
        self.tech = tech
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.context = context
        self.exten = exten
        self.priority = priority
        self.caller_num = caller_num
        self.caller_name = caller_name
        self.connected_num = ""
        self.connected_name = ""
        self.language = language
        self.accountcode = ""
        self.musicclass = ""  # CHANNEL(musicclass)
        self.state = state
        self.party = party
        self.dnid = dnid
        self.app = ""
        self.appdata = ""
        self.variables: dict[str, tuple[str, str]] = {}
        self.hungup = False
        self.hangup_cause = 0
        self.hangup_by: str | None = None
        self.destroyed = False
        self.record: CallRecord | None = None
        self.created_at = pbx.clock.stamp()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.bridged_with: Channel | None = None
        self.audiohooks: list[Any] = []  # MixMonitors on this channel (sim/apps/mixmonitor.py)
        self._bridge_id = ""
        self.party_hangup_hook: Callable[[], None] | None = None
        self.in_pbx = False  # a dialplan Runner drives this channel
        self.pending_goto: tuple[str, str, int] | None = None
        self._hangup_waiters: list[Callable[[], None]] = []
        self._goto_waiters: list[Callable[[], None]] = []
        self._answer_waiters: list[Callable[[], None]] = []

    @property
    def bridge_id(self) -> str:
        """The bridge (a two-party bridge or a ConfBridge room) the channel is in, or ""."""
        return self._bridge_id

    @bridge_id.setter
    def bridge_id(self, value: str) -> None:
        was, self._bridge_id = bool(self._bridge_id), value
        if was != bool(value):
            for hook in self.audiohooks:
                hook.bridged(bool(value))

    # events -----------------------------------------------------------------------------
    def emit(self, event: ev.Event) -> None:
        self.pbx.events.publish(event)

    @property
    def observed(self) -> bool:
        """Whether anyone listens to events (building them is skipped otherwise)."""
        return self.pbx.events.active

    def emit_channel_event(self, name: str, privilege: str, *extra: tuple[str, str]) -> None:
        if self.observed:
            self.emit(ev.channel_event(name, privilege, self, *extra))

    # variables --------------------------------------------------------------------------
    def set_var(self, name: str, value: str, event: bool = True) -> None:
        """Set (or with an empty value, unset) a channel variable, emitting VarSet."""
        key = var_key(name)
        self.variables.pop(key, None)
        if value != "":
            self.variables[key] = (name, value)
        if event and self.observed:
            self.emit(ev.varset(self, name, value))

    def get_var(self, name: str) -> str | None:
        item = self.variables.get(var_key(name))
        return item[1] if item else None

    def inheritable(self) -> list[tuple[str, str]]:
        return [(full, value) for full, value in self.variables.values() if full.startswith("_")]

    def all_vars(self) -> dict[str, str]:
        return {key: value for key, (_full, value) in self.variables.items()}

    # state ------------------------------------------------------------------------------
    def set_state(self, state: State) -> None:
        if state != self.state:
            self.state = state
            self.emit_channel_event("Newstate", ev.CALL)

    def answer(self) -> None:
        if self.state == State.UP:
            return
        self.set_state(State.UP)
        self.answered_at = self.pbx.clock.stamp()
        waiters, self._answer_waiters = self._answer_waiters, []
        for fn in waiters:
            fn()

    def on_answer(self, fn: Callable[[], None]) -> None:
        if self.state == State.UP:
            fn()
        else:
            self._answer_waiters.append(fn)

    def set_callerid(self, num: str | None = None, name: str | None = None) -> None:
        if num is not None:
            self.caller_num = num
        if name is not None:
            self.caller_name = name
        if self.observed:
            self.emit(ev.new_callerid(self))

    # hangup -----------------------------------------------------------------------------
    def request_hangup(self, cause: int = 16, by: str = "pbx", soft: bool = True) -> bool:
        """Mark the channel hung up and wake everything waiting on it. False if already so."""
        if self.hungup or self.destroyed:
            return False
        self.hungup = True
        self.hangup_cause = cause
        self.hangup_by = by
        if self.observed:
            self.emit(ev.hangup_request(self, cause, soft))
        waiters, self._hangup_waiters = self._hangup_waiters, []
        for fn in waiters:
            try:
                fn()
            except Exception:
                log.exception("hangup waiter failed on %s", self.name)
        return True

    def on_hangup(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn`` once when the channel hangs up; returns a canceller."""
        if self.hungup:
            fn()
            return lambda: None
        self._hangup_waiters.append(fn)

        def cancel() -> None:
            if fn in self._hangup_waiters:
                self._hangup_waiters.remove(fn)

        return cancel

    def prepare_goto(self, context: str, exten: str, priority: int) -> bool:
        """AMI Redirect, first half (ast_async_goto): a channel whose dialplan runs continues
        at (context, exten, priority) once its application ends; one without (a queue member's
        leg) is placed there and True says a new Runner must start it. :meth:`wake_goto` then
        ends the application's waits, as a hangup would."""
        if self.in_pbx:
            self.pending_goto = (context, exten, priority)
            return False
        self.context, self.exten, self.priority = context, exten, priority
        self.in_pbx = True
        return True

    def wake_goto(self) -> None:
        waiters, self._goto_waiters = self._goto_waiters, []
        for fn in waiters:
            fn()

    def on_goto(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn`` once when the channel is redirected; returns a canceller."""
        self._goto_waiters.append(fn)

        def cancel() -> None:
            if fn in self._goto_waiters:
                self._goto_waiters.remove(fn)

        return cancel

    def destroy(self, cause: int | None = None) -> None:
        """Emit Hangup and forget the channel."""
        if self.destroyed:
            return
        if not self.hungup:
            self.hungup = True
            self.hangup_cause = cause if cause is not None else 16
            waiters, self._hangup_waiters = self._hangup_waiters, []
            for fn in waiters:
                fn()
        if cause is not None:
            self.hangup_cause = cause
        self.destroyed = True
        self.ended_at = self.pbx.clock.stamp()
        hooks, self.audiohooks = self.audiohooks, []
        for hook in hooks:  # a MixMonitor's file is complete when its channel goes
            hook.close()
        if self.observed:
            self.emit(ev.hangup(self, self.hangup_cause))
        self.pbx.forget(self)

    # party input ------------------------------------------------------------------------
    def window(self, opportunity: bool = False) -> Any:
        from sim.inputs import InputWindow

        return InputWindow(self, opportunity)

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` of simulated time; False if the channel hung up meanwhile."""
        win = self.window(False)
        try:
            result = await win.wait(seconds)
        finally:
            win.close()
        return result.kind == "done"

    def receive_dtmf(self, digit: str) -> None:
        if self.observed:
            self.emit(ev.dtmf(self, digit, end=False))
            self.emit(ev.dtmf(self, digit, end=True))
        if self.party is not None:
            self.party.pressed.append([self.pbx.clock.stamp(), digit])

    def __repr__(self) -> str:
        return f"<Channel {self.name} {self.state.desc}>"
