"""Outgoing legs (Dial targets and Originate channels): dial strings, ringing, the outcome.

The party behind a dial string is looked up in the phone book by ``number@context`` (Local
channels) and ``number``; unknown numbers get the default phone (answers after 3 s).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from sim import events as ev
from sim.channel import Channel, State
from sim.parties import PhoneParty

if TYPE_CHECKING:
    from sim.pbx import Pbx

log = logging.getLogger(__name__)

ANSWER, BUSY, NOANSWER, CONGESTION, CANCEL, CHANUNAVAIL = (
    "ANSWER", "BUSY", "NOANSWER", "CONGESTION", "CANCEL", "CHANUNAVAIL")
HUNGUP = "HANGUP"
_TECHS = ("Local", "PJSIP", "SIP", "IAX2", "DAHDI", "Console")
_RESOURCE = re.compile(r"^[A-Za-z0-9_.+*#@/\-:]{1,200}$")


class DialStringError(ValueError):
    """A dial string names no channel technology the simulator can reach."""


@dataclass
class Target:
    tech: str
    resource: str  # what follows "Tech/"
    number: str
    keys: tuple[str, ...]
    local_context: str = ""
    device: str = ""

    @property
    def dialstring(self) -> str:
        return f"{self.tech}/{self.resource}"


def parse_dialstring(text: str) -> Target:
    tech, sep, resource = text.strip().partition("/")
    canonical = next((t for t in _TECHS if t.lower() == tech.lower()), None)
    if not sep or canonical is None:
        raise DialStringError(f"unsupported channel technology in {text!r}")
    if not _RESOURCE.match(resource):
        raise DialStringError(f"bad dial string {text!r}")
    if canonical == "Local":
        body = resource.split("/")[0]
        number, _, context = body.partition("@")
        context = context or "default"
        return Target(canonical, resource, number, (f"{number}@{context}", number), context,
                      device=f"Local/{number}@{context}")
    if canonical == "SIP" and resource.count("/") >= 1:
        peer, _, number = resource.partition("/")
        return Target(canonical, resource, number, (number, peer), device=f"SIP/{peer}")
    if canonical == "DAHDI":
        number = resource.split("/")[-1]
        return Target(canonical, resource, number, (number,), device=f"DAHDI/{number}")
    number, _, endpoint = resource.partition("@")
    return Target(canonical, resource, number, (number, resource),
                  device=f"{canonical}/{endpoint or number}")


class OutboundLeg:
    """One outgoing call attempt; for Local channels also the ``;2`` half."""

    def __init__(
        self,
        pbx: Pbx,
        target: Target,
        party: PhoneParty,
        *,
        caller: Channel | None,
        caller_num: str,
        caller_name: str,
        linkedid: str | None,
        variables: list[tuple[str, str]],
        language: str = "en",
    ) -> None:
        self.pbx = pbx
        self.target = target
        self.party = party
        self.caller = caller
        seq = pbx.next_channel_seq()
        if target.tech == "Local":
            base = f"Local/{target.resource.split('/')[0]}-{seq:08x}"
            name, context, exten = base + ";1", target.local_context, target.number
        else:
            device = target.device.split("/", 1)[1]
            name, context, exten = f"{target.tech}/{device}-{seq:08x}", "default", "s"
        self.chan = pbx.new_channel(
            name, target.tech, context=context, exten=exten, linkedid=linkedid,
            state=State.DOWN, party=party, language=language,
        )
        self.half: Channel | None = None
        if target.tech == "Local":
            self.half = pbx.new_channel(
                base + ";2", "Local", context=context, exten=exten,
                linkedid=self.chan.linkedid, state=State.RING, language=language,
            )
            self.chan.emit(ev.newexten(self.chan, "AppDial2", "(Outgoing Line)"))
        for half in (self.chan, self.half):
            if half is None:
                continue
            for name_, value in variables:
                half.set_var(name_, value)
            if caller_num or caller_name:
                half.caller_num, half.caller_name = caller_num, caller_name
                half.emit(ev.new_callerid(half))
                half.connected_num, half.connected_name = caller_num, caller_name
                half.emit_channel_event("NewConnectedLine", ev.CALL)
        if self.half is not None:
            self.chan.emit(ev.local_bridge(self.chan, self.half))
        self.chan.emit(ev.two_channel_event("DialBegin", ev.CALL, caller, self.chan,
                                            ("DialString", target.resource)))

    def _dial_end(self, status: str) -> None:
        self.chan.emit(ev.two_channel_event("DialEnd", ev.CALL, self.caller, self.chan,
                                            ("DialStatus", status)))

    async def ring(
        self, timeout: float | None, waiter: Channel | None, cancel: Deferred | None = None
    ) -> str:
        """Ring until the phone reacts, ``timeout`` sim seconds pass, ``waiter`` hangs up or
        ``cancel`` fires (the last two give CANCEL)."""
        config = self.party.config
        clock = self.pbx.clock
        if config.answer in ("answer", "noanswer") and (config.ring_s > 0 or
                                                       config.answer == "noanswer"):
            self.chan.set_state(State.RINGING)
            self.chan.emit(ev.two_channel_event("DialState", ev.CALL, self.caller, self.chan,
                                                ("DialStatus", "RINGING")))
        reacted: Deferred = Deferred()
        reaction = None
        if config.answer != "noanswer":
            reaction = clock.call_later(config.ring_s, reacted.callback, config.answer)
        try:
            if waiter is not None:
                win = waiter.window(opportunity=False)
                try:
                    res = await win.wait(timeout, until=reacted)
                finally:
                    win.close()
                kind, value = res.kind, res.value
            else:
                kind, value = await _race(clock, timeout, reacted, cancel)
        finally:
            if reaction is not None and reaction.active():
                reaction.cancel()
        if kind == "hangup":
            self._dial_end(CANCEL)
            self.hangup(16)
            return CANCEL
        if kind == "done":
            if self.caller is not None:  # Dial() reports it; a timed-out Originate does not
                self._dial_end(NOANSWER)
            self.hangup(19, soft_first=True)
            return NOANSWER
        return self._react(str(value))

    def _react(self, mode: str) -> str:
        if mode == "answer":
            if self.half is not None:
                self.half.set_state(State.UP)
                self.chan.on_hangup(self._near_hung_up)
                self.chan.party_hangup_hook = self._far_hangs_up
            self.chan.answer()
            self._dial_end(ANSWER)
            return ANSWER
        if mode == "busy":
            if self.half is not None:
                self.half.set_state(State.BUSY)
            self._dial_end(BUSY)
            self.hangup(17, near_cause=0)
            return BUSY
        if mode == "congestion":
            self._dial_end(CONGESTION)
            if self.half is not None:
                self.half.set_state(State.BUSY)
            self.hangup(34, near_cause=0)
            return CONGESTION
        self._dial_end(CHANUNAVAIL)
        self.hangup(21)
        return HUNGUP

    def _soft_request(self, chan: Channel) -> None:
        chan.emit(ev.hangup_request(chan, 16, soft=True))

    def hangup(self, cause: int, near_cause: int | None = None, soft_first: bool = False) -> None:
        """End an unanswered attempt: the far (``;2``) half gets ``cause``, this one
        ``near_cause``, in Asterisk's order of HangupRequest/SoftHangupRequest/Hangup."""
        near = cause if near_cause is None else near_cause
        half = self.half
        if half is None or half.destroyed:
            self.chan.request_hangup(cause, by="pbx", soft=soft_first)
            self.chan.destroy(cause)
            return
        half.request_hangup(near if near_cause is not None else cause, by="pbx", soft=False)
        if soft_first:
            self._soft_request(half)
            self.chan.destroy(near)
        else:
            self.chan.destroy(near)
            self._soft_request(half)
        half.destroy(cause)

    def _near_hung_up(self) -> None:
        """The answered ``;1`` side hung up: the ``;2`` half goes at once."""
        half = self.half
        if half is None or half.destroyed:
            return
        if not half.hungup:
            half.request_hangup(16, by="pbx", soft=False)
            self._soft_request(half)
        half.destroy(16)

    def _far_hangs_up(self) -> None:
        """The party behind the Local channel hangs up (its side runs Hangup())."""
        half = self.half
        if half is not None and not half.destroyed:
            self._soft_request(half)
            half.hungup = True
        self.chan.request_hangup(16, by="callee", soft=False)
        if half is not None and not half.destroyed:
            half.destroy(16)

    def finish(self) -> None:
        """After the leg's dialplan or bridge ended: make sure the ``;2`` half is gone."""
        self._near_hung_up()


async def _race(
    clock, timeout: float | None, reacted: Deferred, cancel: Deferred | None
) -> tuple[str, object]:
    done: Deferred = Deferred()
    timer = None
    if timeout is not None:
        timer = clock.call_later(timeout, lambda: done.called or done.callback(("done", None)))

    def on_react(value: object) -> object:
        if not done.called:
            done.callback(("until", value))
        return value

    def on_cancel(value: object) -> object:
        if not done.called:
            done.callback(("hangup", None))
        return value

    reacted.addCallback(on_react)
    if cancel is not None:
        cancel.addCallback(on_cancel)
    try:
        return await done
    finally:
        if timer is not None and timer.active():
            timer.cancel()
