"""Input windows: while a channel does something (plays, waits, listens), its party may press
keys or hang up. A window arms the party's pending inputs as timers relative to its start and
hands back those that did not happen when it closes, so between windows party time stands still.

Positions inside a window are nominal simulated seconds: a key press happens exactly at its
scripted delay and a prompt ends exactly at its length, whatever the timer jitter, so results
such as ``endpos`` are reproducible at any speed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.parties import PartyInput


@dataclass
class WaitResult:
    kind: str  # "done" | "digit" | "hangup" | "until" | "redirect"
    digit: str | None = None
    elapsed: float = 0.0
    value: Any = None


class InputWindow:
    def __init__(self, chan: Channel, opportunity: bool) -> None:
        self.chan = chan
        self.clock = chan.pbx.clock
        self.start = self.clock.elapsed()
        self.position = 0.0
        self.listener: Callable[[str], None] | None = None
        self.speaker: Callable[[bytes], None] | None = None
        party = chan.party
        self.items: list[PartyInput] = party.arm(opportunity) if party is not None else []
        self.fired: set[int] = set()
        self.calls = [
            self.clock.call_later(item.delay, self._fire, idx)
            for idx, item in enumerate(self.items)
        ]
        self.closed = False

    def _measured(self) -> float:
        return max(self.position, self.clock.elapsed() - self.start)

    def _fire(self, idx: int) -> None:
        self.fired.add(idx)
        item = self.items[idx]
        self.position = max(self.position, item.delay)
        if item.audio is not None:
            if self.speaker is not None and not self.chan.hungup:
                self.speaker(item.audio)
            return
        if item.digit is None:
            self.chan.pbx.party_hangup(self.chan)
            return
        if self.chan.hungup:
            return
        self.chan.receive_dtmf(item.digit)
        if self.listener is not None:
            self.listener(item.digit)

    async def wait(
        self,
        duration: float | None,
        stop: Callable[[str], bool] | None = None,
        until: Deferred | None = None,
    ) -> WaitResult:
        """Wait ``duration`` sim seconds (None: no limit) for a stopping digit, hangup or
        ``until`` firing, whichever comes first."""
        began = self.position
        if self.chan.hungup:
            return WaitResult("hangup")
        d: Deferred = Deferred()

        def finish(kind: str, digit: str | None = None, value: Any = None) -> None:
            if d.called:
                return
            if kind == "done" and duration is not None:
                self.position = began + duration
            elif kind != "digit":
                self.position = self._measured()
            d.callback(WaitResult(kind, digit, self.position - began, value))

        remaining = None if duration is None else max(0.0, began + duration - self._measured())
        timer = self.clock.call_later(remaining, finish, "done") if remaining is not None else None

        def on_digit(digit: str) -> None:
            if stop is not None and stop(digit):
                finish("digit", digit)

        self.listener = on_digit
        cancel_hangup = self.chan.on_hangup(lambda: finish("hangup"))
        cancel_goto = self.chan.on_goto(lambda: finish("redirect"))
        if until is not None:

            def passthrough(value: Any) -> Any:
                finish("until", value=value)
                return value

            until.addBoth(passthrough)
        try:
            return await d
        finally:
            self.listener = None
            cancel_hangup()
            cancel_goto()
            if timer is not None and timer.active():
                timer.cancel()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for call in self.calls:
            if call.active():
                call.cancel()
        party = self.chan.party
        if party is None:
            return
        left = [
            item.later(self.position)
            for idx, item in enumerate(self.items)
            if idx not in self.fired
        ]
        party.disarm(left)
