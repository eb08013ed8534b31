"""The PBX facade: channels, variables, calls from parties, Originate, bridges, statistics.

This is the surface the AMI server and the control protocol use; the dialplan interpreter,
applications and AGI sessions reach the PBX through it as well.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred

from sim import events as ev
from sim.agi.env import THREAD_ID_BASE
from sim.channel import Channel, State
from sim.clock import SimClock
from sim.dialplan.parser import Dialplan
from sim.functions import builtin_variable, parse_callerid, read_function, write_function
from sim.interpreter import Runner
from sim.moh import MusicOnHold
from sim.outbound import (
    ANSWER,
    BUSY,
    CONGESTION,
    HUNGUP,
    NOANSWER,
    DialStringError,
    OutboundLeg,
    Target,
    parse_dialstring,
)
from sim.parties import CallerParty, PhoneBook
from sim.queue_log import QueueLog
from sim.queues import QueueManager
from sim.record import CallRecord
from sim.seats import Seats, extension_state
from sim.sounds import SoundLibrary

log = logging.getLogger(__name__)

ORIGINATE_LOG = 100_000  # the calls placed through Originate that tests can read back

ORIGINATE_REASON = {ANSWER: 4, BUSY: 5, NOANSWER: 3, CONGESTION: 8, HUNGUP: 1}


@dataclass
class PbxSettings:
    """Bounds and paths. The two timeouts are real seconds: they guard against a real engine."""

    agi_connect_timeout: float = 2.0
    agi_idle_timeout: float = 60.0
    agi_dir: Path = field(default_factory=lambda: Path("agi_scripts").resolve())
    record_dir: Path | None = None
    # asterisk.conf's systemname: with one, every uniqueid starts "<systemname>-", so the
    # uniqueids of several PBXs never collide
    system_name: str = ""
    # the PJSIP trunk endpoints pjsip-trunk.conf would define, beside pjsip.conf's seats: a
    # call to PJSIP/<number>@<other> fails as chan_pjsip's does for an endpoint that does
    # not exist
    pjsip_trunks: frozenset[str] = frozenset({"trunk"})
    # app_queue's queue log (Asterisk: /var/log/asterisk/queue_log); None: not written
    queue_log: Path | None = None


@dataclass
class OriginateRequest:
    channel: str
    context: str = ""
    exten: str = ""
    priority: int | str = 1
    application: str = ""
    data: str = ""
    timeout_ms: int = 30000
    caller_id: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    account: str = ""


@dataclass
class OriginateResult:
    """Reason as Asterisk: 0 failed, 1 hung up, 3 no answer, 4 answered, 5 busy, 8 congestion.

    ``ended`` fires with the call result (as for inbound calls) when an answered call ends.
    """

    reason: int
    uniqueid: str | None
    channel: str | None
    ended: Deferred | None = None


class Pbx:
    def __init__(
        self,
        reactor: Any,
        clock: SimClock,
        dialplan: Dialplan,
        sounds: SoundLibrary,
        settings: PbxSettings | None = None,
        global_overrides: dict[str, str] | None = None,
    ) -> None:
        self.reactor = reactor
        self.clock = clock
        self.dialplan = dialplan
        self.sounds = sounds
        self.settings = settings or PbxSettings()
        self.events = ev.EventBus()
        self.phones = PhoneBook()
        self.originated: deque[dict[str, Any]] = deque(maxlen=ORIGINATE_LOG)
        self.queue_log = QueueLog(self.settings.queue_log, self.clock)
        self.queues = QueueManager(self)
        self.moh = MusicOnHold()
        self.seats = Seats()
        self.conferences: dict[str, Any] = {}  # ConfBridge rooms by name
        self.globals: dict[str, str] = {**dialplan.globals, **(global_overrides or {})}
        self.astdb: dict[tuple[str, str], str] = {}
        self.stats: Counter[str] = Counter(dict.fromkeys(
            ("calls_started", "calls_ended", "originates", "channels_created", "agi_sessions",
             "agi_commands", "agi_processes"), 0))
        self._channels: dict[str, Channel] = {}
        self._uid = itertools.count()
        self._chan_seq = itertools.count()
        self._timers: dict[str, list[Any]] = {}

    # channels -----------------------------------------------------------------------------
    def next_channel_seq(self) -> int:
        return next(self._chan_seq)

    def new_channel(
        self,
        name: str,
        tech: str,
        *,
        context: str,
        exten: str,
        linkedid: str | None = None,
        state: State = State.DOWN,
        party: Any = None,
        caller_num: str = "",
        caller_name: str = "",
        language: str = "en",
        dnid: str = "",
    ) -> Channel:
        uniqueid = f"{int(self.clock.now())}.{next(self._uid)}"
        if self.settings.system_name:
            uniqueid = f"{self.settings.system_name}-{uniqueid}"
        chan = Channel(
            self, name, tech, uniqueid, linkedid or uniqueid, context=context, exten=exten,
            caller_num=caller_num, caller_name=caller_name, language=language, state=state,
            party=party, dnid=dnid,
        )
        self._channels[name] = chan
        self.stats["channels_created"] += 1
        chan.emit_channel_event("Newchannel", ev.CALL)
        return chan

    def forget(self, chan: Channel) -> None:
        if self._channels.get(chan.name) is chan:
            del self._channels[chan.name]
        for timer in self._timers.pop(chan.name, []):
            if timer.active():
                timer.cancel()

    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def find_channel(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def thread_id(self, chan: Channel) -> int:
        return THREAD_ID_BASE + 512 * (abs(hash(chan.linkedid)) % 4096)

    # seats --------------------------------------------------------------------------------
    def cannot_create(self, target: Target) -> str | None:
        """Why chan_pjsip could not create a channel to ``target`` (ast_request fails, nothing
        rings), or None: an unregistered seat, or an endpoint that does not exist."""
        if self.seats.knows(target.device) and self.device_state(target.device) == "UNAVAILABLE":
            return f"{target.device} is unavailable"
        if target.tech == "PJSIP" and "@" in target.resource:
            endpoint = target.resource.rpartition("@")[2]
            if endpoint not in self.settings.pjsip_trunks \
                    and not self.seats.knows(f"PJSIP/{endpoint}"):
                return (f"Unable to create PJSIP channel with endpoint '{endpoint}' as it "
                        "does not exist")
        return None

    def device_state(self, device: str) -> str:
        """Device state of a seat (``PJSIP/operator1``) from its registration and channels."""
        prefix = device + "-"
        states = [c.state.desc for c in self._channels.values()
                  if c.name.startswith(prefix) and not c.hungup]
        return self.seats.device_state(device, states)

    def extension_state(self, context: str, exten: str) -> int:
        """ExtensionState of a hint (-1 without one), as a busy lamp would show it."""
        devices = self.dialplan.hint(context, exten)
        if devices is None:
            return -1
        return extension_state([self.device_state(d.strip()) for d in devices.split("&")])

    # variables ----------------------------------------------------------------------------
    def lookup_variable(self, chan: Channel | None, name: str) -> str | None:
        value = builtin_variable(self, chan, name)
        if value is not None:
            return value
        if chan is not None:
            value = chan.get_var(name)
            if value is not None:
                return value
        return self.globals.get(name)

    def set_global(self, name: str, value: str) -> None:
        if value == "":
            self.globals.pop(name, None)
        else:
            self.globals[name] = value

    def get_variable(self, channel: str | None, name: str) -> str | None:
        """AMI Getvar: None channel reads a global; functions like CALLERID(num) work too."""
        chan = self.find_channel(channel) if channel else None
        if channel and chan is None:
            return None
        if name.endswith(")") and "(" in name:
            fname, _, args = name.partition("(")
            return read_function(self, chan, fname, args[:-1])
        if chan is None:
            return self.globals.get(name)
        return self.lookup_variable(chan, name)

    def set_variable(self, channel: str | None, name: str, value: str) -> bool:
        chan = self.find_channel(channel) if channel else None
        if channel and chan is None:
            return False
        if name.endswith(")") and "(" in name:
            return write_function(self, chan, name, value)
        if chan is None:
            self.set_global(name, value)
        else:
            chan.set_var(name, value)
        return True

    # hangups ------------------------------------------------------------------------------
    def hangup(self, channel: str, cause: int = 16) -> bool:
        chan = self.find_channel(channel)
        if chan is None:
            return False
        chan.request_hangup(cause, by="pbx", soft=True)
        return True

    def party_hangup(self, chan: Channel) -> None:
        """The party on ``chan`` hangs up (scripted step or ``hangup_after``)."""
        if chan.hungup or chan.destroyed:
            return
        if chan.party_hangup_hook is not None:
            chan.party_hangup_hook()
            return
        inbound = chan.record is not None and chan.record.kind == "inbound"
        chan.request_hangup(16, by="caller" if inbound else "callee", soft=False)

    def _add_timer(self, chan: Channel, timer: Any) -> None:
        self._timers.setdefault(chan.name, []).append(timer)

    def start_hangup_timer(self, chan: Channel) -> None:
        """The party's ``hangup_after`` counts from answer."""
        party = chan.party
        if party is None or party.hangup_after is None:
            return

        def arm() -> None:
            if not chan.destroyed:
                timer = self.clock.call_later(party.hangup_after, self.party_hangup, chan)
                self._add_timer(chan, timer)

        chan.on_answer(arm)

    def set_autohangup(self, chan: Channel, seconds: float) -> None:
        for timer in self._timers.pop(chan.name + "#auto", []):
            if timer.active():
                timer.cancel()
        if seconds > 0:
            timer = self.clock.call_later(seconds, chan.request_hangup, 16, "pbx", True)
            self._timers.setdefault(chan.name + "#auto", []).append(timer)
            self._add_timer(chan, timer)

    # bridges ------------------------------------------------------------------------------
    async def bridge(self, a: Channel, b: Channel) -> bool:
        """Connect ``a`` with ``b`` until one hangs up; True if ``b`` ended it."""
        bridge_id = str(uuid.uuid4())
        self.events.publish(ev.bridge_event("BridgeCreate", bridge_id, 0))
        self.events.publish(ev.bridge_event("BridgeEnter", bridge_id, 1, b))
        self.events.publish(ev.bridge_event("BridgeEnter", bridge_id, 2, a))
        a.bridged_with, b.bridged_with = b, a
        a.bridge_id = b.bridge_id = bridge_id
        b_gone: Deferred = Deferred()
        cancel = b.on_hangup(lambda: b_gone.called or b_gone.callback(None))
        cancel_goto = b.on_goto(lambda: b_gone.called or b_gone.callback(None))
        win = a.window(opportunity=False)
        try:
            res = await win.wait(None, until=b_gone)
        finally:
            win.close()
            cancel()
            cancel_goto()
        by_b = res.kind == "until"
        first, second = (b, a) if by_b else (a, b)
        self.events.publish(ev.bridge_event("BridgeLeave", bridge_id, 1, first))
        self.events.publish(ev.bridge_event("BridgeLeave", bridge_id, 0, second))
        self.events.publish(ev.bridge_event("BridgeDestroy", bridge_id, 0))
        a.bridged_with = b.bridged_with = None
        a.bridge_id = b.bridge_id = ""
        if not by_b and not b.hungup and not b.in_pbx:  # a redirected b lives on
            b.request_hangup(16, by="pbx", soft=True)
        return by_b

    # calls --------------------------------------------------------------------------------
    def call(self, data: Any) -> Deferred:
        """An inbound call from a caller party; fires with the call result when it ends.

        Raises PartyError for an invalid caller description.
        """
        party = CallerParty.from_json(data)
        prefix = party.channel or "PJSIP/pstn"
        tech = prefix.split("/", 1)[0] if "/" in prefix else "PJSIP"
        seq = self.next_channel_seq()
        name = f"{prefix}-{seq:08x}" + (";1" if tech == "Local" else "")
        chan = self.new_channel(
            name, tech, context=party.context, exten=party.to, state=State.RING, party=party,
            caller_num=party.number, caller_name=party.name, language=party.language,
            dnid=party.to,
        )
        chan.record = CallRecord("inbound")
        for key, value in party.variables.items():
            chan.set_var(key, value)
        self.stats["calls_started"] += 1
        self.start_hangup_timer(chan)
        runner = Runner(self, chan)

        async def run() -> dict[str, Any]:
            await runner.run()
            self.stats["calls_ended"] += 1
            assert chan.record is not None
            return chan.record.result(chan)

        return Deferred.fromCoroutine(run())

    def originate(self, req: OriginateRequest) -> Deferred:
        """Place an outgoing call; fires with OriginateResult once answered or failed."""
        result: Deferred = Deferred()
        Deferred.fromCoroutine(self._originate(req, result)).addErrback(
            lambda f: log.error("originate failed: %s", f.getTraceback())
        )
        return result

    async def _originate(self, req: OriginateRequest, result: Deferred) -> None:
        self.stats["originates"] += 1
        record = {"channel": req.channel, "context": req.context, "exten": req.exten,
                  "variables": dict(req.variables), "at": self.clock.now(), "party": None,
                  "dial": [], "ended_at": None}
        self.originated.append(record)
        chan: Channel | None = None
        try:
            chan = await self._place(req, result, record)
        finally:
            # the line is free again: when its channel was destroyed (its Hangup event), not
            # when the bookkeeping after it is over
            gone = chan is not None and chan.ended_at is not None
            record["ended_at"] = (self.clock.origin + chan.ended_at if gone and chan
                                  else self.clock.now())

    async def _place(self, req: OriginateRequest, result: Deferred, record: dict[str, Any]
                     ) -> Channel | None:
        """Ring and run the call; the answered channel, else None."""
        def fire(reason: int, chan: Channel | None, ended: Deferred | None = None) -> None:
            if not result.called:
                result.callback(OriginateResult(
                    reason, chan.uniqueid if chan else None, chan.name if chan else None, ended))

        try:
            target = parse_dialstring(req.channel)
        except DialStringError as exc:
            log.warning("Originate: %s", exc)
            fire(0, None)
            return
        refused = self.cannot_create(target)
        if refused is not None:
            # chan_pjsip cannot create the channel: ast_request fails and the
            # OriginateResponse reason is 0 (failed), nothing rings
            log.info("Originate: %s", refused)
            fire(0, None)
            return
        name, num = parse_callerid(req.caller_id)
        record["party"] = party = self.phones.party(*target.keys)
        leg = OutboundLeg(
            self, target, party, caller=None, caller_num=num,
            caller_name=name, linkedid=None, variables=list(req.variables.items()),
        )
        timeout = max(0, req.timeout_ms) / 1000.0 if req.timeout_ms else 30.0
        status = await leg.ring(timeout, None)
        if status != ANSWER:
            fire(ORIGINATE_REASON.get(status, 0), None)
            return
        chan = leg.chan
        chan.record = CallRecord("outbound")
        record["dial"] = chan.record.dial  # what the answered channel dialled from the dialplan
        ended: Deferred = Deferred()
        self.start_hangup_timer(chan)
        if req.application:
            runner = Runner(self, chan)
            fire(4, chan, ended)
            await runner.execute(req.application, req.data)
            chan.request_hangup(16, by="pbx", soft=True)
            chan.destroy()
        else:
            chan.context = req.context or "default"
            chan.exten = req.exten or "s"
            runner = Runner(self, chan, on_first_step=lambda: fire(4, chan, ended))
            prio = runner.find_label(chan.context, chan.exten, str(req.priority))
            chan.priority = prio if prio is not None and prio > 0 else 1
            await runner.run()
        leg.finish()
        ended.callback(chan.record.result(chan))
        return chan

    # reporting ----------------------------------------------------------------------------
    def stats_snapshot(self) -> dict[str, Any]:
        return {
            "sim_time": self.clock.stamp(),
            "sim_epoch": round(self.clock.now(), 3),
            "speed": self.clock.speed,
            "channels": len(self._channels),
            "calls_active": self.stats["calls_started"] - self.stats["calls_ended"],
            **{k: v for k, v in sorted(self.stats.items())},
            "queues": self.queues.snapshot(),
        }
