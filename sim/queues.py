"""The operator queue: scripted operators, QUEUE_PRIO ordering, ringinuse=no, timeouts.

An operator is free or busy; a free operator who is ``available`` is rung for the first waiting
caller (highest QUEUE_PRIO first, then arrival order) and answers ``answer_delay_s`` later, then
talks ``talk_s`` and hangs up. A caller who leaves (hangup, timeout) while being rung cancels it.
A queue whose ``strategy`` is ``ringall`` (queues.conf) rings every free member at once for its
first caller; the first to answer gets the call and the others' ringing is cancelled. Any other
strategy rings one member at a time.

An operator whose name is a seat of pjsip.conf (``PJSIP/<name>``) that has registered follows
that registration: while the seat's device state is UNAVAILABLE or INVALID the queue does not
ring it. A seat that never registered is taken to be the scripted operator's own softphone.
An operator who is not ``available`` is a paused member. ``joinempty`` and ``leavewhenempty``
(queues.conf) refuse a caller, or send one away, when the queue counts as empty
(sim/queue_empty.py).
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from sim import events as ev
from sim.channel import Channel, State
from sim.conf import ast_true, read_sections
from sim.parties import PartyError
from sim.queue_empty import is_empty, parse_empty_options
from sim.queue_log import NO_AGENT

if TYPE_CHECKING:
    from twisted.internet.interfaces import IDelayedCall

    from sim.pbx import Pbx

log = logging.getLogger(__name__)

LEAVE_EMPTY = "LEAVEEMPTY"  # a waiter's ``done`` value when leavewhenempty sent it away
UNREACHABLE = ("UNAVAILABLE", "INVALID")


@dataclass
class Operator:
    name: str
    answer_delay_s: float = 5.0
    talk_s: float = 60.0
    available: bool = True
    queues: tuple[str, ...] | None = None
    busy: bool = False
    calls_taken: int = 0
    last_call: int = 0
    login_time: int = 0

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.name}"

    def serves(self, queue: str) -> bool:
        return self.queues is None or queue in self.queues

    @classmethod
    def from_json(cls, data: Any) -> Operator:
        if not isinstance(data, dict):
            raise PartyError("operator must be an object")
        name = data.get("name")
        if not isinstance(name, str) or not name or len(name) > 64 or not all(
            c.isalnum() or c in "_-." for c in name
        ):
            raise PartyError("operator.name must be 1-64 letters, digits, '_', '-' or '.'")
        queues = data.get("queues")
        if queues is not None and (
            not isinstance(queues, list) or not all(isinstance(q, str) for q in queues)
        ):
            raise PartyError("operator.queues must be a list of queue names")
        values = {}
        for key, default in (("answer_delay_s", 5.0), ("talk_s", 60.0)):
            value = data.get(key, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise PartyError(f"operator.{key} must be a non-negative number")
            values[key] = float(value)
        return cls(name=name, available=bool(data.get("available", True)),
                   queues=tuple(queues) if queues is not None else None, **values)


@dataclass
class Waiter:
    chan: Channel
    queue: str
    prio: int
    seq: int
    joined_at: float
    done: Deferred = field(default_factory=Deferred)
    ringing: list[tuple[Operator, Channel, IDelayedCall]] = field(default_factory=list)
    rang_at: float = 0.0
    original_position: int = 1  # Position at QueueCallerJoin (app_queue's qe->opos)


@dataclass
class QueueStats:
    """app_queue's per-queue counters (callscompleted, callsabandoned)."""

    completed: int = 0
    abandoned: int = 0


@dataclass
class Connection:
    operator: Operator
    op_chan: Channel
    hold_time: int
    ring_time: int


class QueueManager:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.operators: list[Operator] = []
        self.waiting: dict[str, list[Waiter]] = {}
        self.strategies: dict[str, str] = {}
        self.musicclasses: dict[str, str] = {}  # hold class per queue (queues.conf)
        self.joinempty: dict[str, frozenset[str]] = {}
        self.leavewhenempty: dict[str, frozenset[str]] = {}
        self.interface_vars: set[str] = set()  # queues with setinterfacevar = yes
        self._rung: Counter[str] = Counter()  # operator name -> waiters ringing them now
        self._stats: dict[str, QueueStats] = {}
        self._seq = itertools.count()

    def load_conf(self, path: Path) -> int:
        """Read each queue's ``strategy``, ``musicclass``, ``joinempty`` and
        ``leavewhenempty`` from a queues.conf; returns the number of queues."""
        for section in read_sections(path):
            name, options = section.name, section.options
            if section.template or name == "general":
                continue
            self.strategies[name] = options.get("strategy", "ringall")
            self.musicclasses[name] = options.get("musicclass", "")
            if ast_true(options.get("setinterfacevar")):
                self.interface_vars.add(name)
            join: frozenset[str] = frozenset()
            leave: frozenset[str] = frozenset()
            for key, value in section.lines:  # each line adds to the ones before
                if key == "joinempty":
                    join = parse_empty_options(value, True, join)
                elif key == "leavewhenempty":
                    leave = parse_empty_options(value, False, leave)
            self.joinempty[name], self.leavewhenempty[name] = join, leave
        return len(self.strategies)

    # configuration -----------------------------------------------------------------------
    def set_operators(self, data: Any) -> int:
        if not isinstance(data, list):
            raise PartyError("operators must be a list")
        parsed = [Operator.from_json(item) for item in data]
        names = [op.name for op in parsed]
        if len(set(names)) != len(names):
            raise PartyError("operator names must be unique")
        old = {op.name: op for op in self.operators}
        now = int(self.pbx.clock.now())
        current: list[Operator] = []
        for op in parsed:
            prev = old.get(op.name)
            if prev is None:
                op.login_time = now
                current.append(op)
                self._member_event("QueueMemberAdded", op)
                continue
            # keep the object: a call in progress still refers to it
            prev.answer_delay_s, prev.talk_s = op.answer_delay_s, op.talk_s
            paused_now = prev.available != op.available
            prev.available, prev.queues = op.available, op.queues
            current.append(prev)
            if paused_now:
                self._member_event("QueueMemberPause", prev)
        for name in old.keys() - set(names):
            self._member_event("QueueMemberRemoved", old[name])
        self.operators = current
        self.refresh()
        return len(parsed)

    def refresh(self) -> None:
        """Ring free members for waiting callers and apply leavewhenempty, after any change
        to the members (operators, seat registrations, a call that ended)."""
        for queue in list(self.waiting):
            self._dispatch(queue)

    def names(self) -> list[str]:
        """The configured queues (queues.conf), then any other queue a caller joined."""
        return [*self.strategies, *(q for q in self.waiting if q not in self.strategies)]

    def members(self, queue: str) -> list[Operator]:
        return [op for op in self.operators if op.serves(queue)]

    def device_state(self, op: Operator) -> str:
        """The member's device state: its seat's once the seat has registered, else that of
        the scripted softphone (RINGING while rung, INUSE on a call, else NOT_INUSE)."""
        seats = self.pbx.seats
        if seats.knows(op.interface) and op.name in seats.contacts:
            return self.pbx.device_state(op.interface)
        if self._rung[op.name]:  # some waiter's ringing list holds them
            return "RINGING"
        return "INUSE" if op.busy else "NOT_INUSE"

    def is_empty(self, queue: str, conditions: frozenset[str]) -> bool:
        """app_queue's get_member_status() for ``queue``: no member escapes ``conditions``."""
        return is_empty(((self.device_state(op), not op.available)
                         for op in self.members(queue)), conditions)

    def refuses(self, queue: str) -> bool:
        """joinempty: a caller may not join ``queue`` as it is now (QUEUESTATUS=JOINEMPTY)."""
        return self.is_empty(queue, self.joinempty.get(queue, frozenset()))

    def stats(self, queue: str) -> QueueStats:
        return self._stats.setdefault(queue, QueueStats())

    def waiting_count(self, queue: str) -> int:
        return len(self.waiting.get(queue, []))

    def snapshot(self) -> dict[str, Any]:
        return {
            "waiting": {q: len(w) for q, w in self.waiting.items() if w},
            "operators": [
                {"name": op.name, "busy": op.busy, "available": op.available,
                 "calls_taken": op.calls_taken}
                for op in self.operators
            ],
        }

    # callers -----------------------------------------------------------------------------
    def join(self, chan: Channel, queue: str, prio: int) -> Waiter:
        waiter = Waiter(chan, queue, prio, next(self._seq), self.pbx.clock.elapsed())
        line = self.waiting.setdefault(queue, [])
        pos = next((i for i, w in enumerate(line) if w.prio < prio), len(line))
        line.insert(pos, waiter)
        waiter.original_position = pos + 1
        chan.emit(ev.channel_event("QueueCallerJoin", ev.AGENT, chan, ("Queue", queue),
                                   ("Position", str(pos + 1)), ("Count", str(len(line)))))
        self.pbx.queue_log.write(chan.uniqueid, queue, NO_AGENT, "ENTERQUEUE", "",
                                 chan.caller_num or "", pos + 1)
        self._dispatch(queue)
        return waiter

    def leave(self, waiter: Waiter, logged: str | None) -> None:
        """The caller stops waiting unanswered: hangup, timeout (EXITWITHTIMEOUT) or a
        redirect. app_queue's record_abandoned() runs for each of them: ABANDONED=TRUE and
        QueueCallerAbandon, then leave_queue()'s QueueCallerLeave; any ringing is cancelled.
        ``logged``: the queue log's event for it (ABANDON, EXITWITHTIMEOUT), None for none."""
        if self._abandon(waiter, logged):
            self.refresh()

    def _abandon(self, waiter: Waiter, logged: str | None) -> bool:
        """record_abandoned() then leave_queue() for ``waiter``; False if it had left."""
        line = self.waiting.get(waiter.queue, [])
        if waiter not in line:
            return False
        self._cancel_rings(waiter)  # try_calling() hangs up the members it rang first
        pos = line.index(waiter) + 1
        chan = waiter.chan
        chan.set_var("ABANDONED", "TRUE")
        held = int(self.pbx.clock.elapsed() - waiter.joined_at)
        self.stats(waiter.queue).abandoned += 1
        chan.emit(ev.channel_event(
            "QueueCallerAbandon", ev.AGENT, chan, ("Queue", waiter.queue),
            ("Position", str(pos)), ("OriginalPosition", str(waiter.original_position)),
            ("HoldTime", str(held)),
        ))
        line.remove(waiter)
        chan.emit(ev.channel_event("QueueCallerLeave", ev.AGENT, chan, ("Queue", waiter.queue),
                                   ("Position", str(pos)), ("Count", str(len(line)))))
        if logged is not None:
            self.pbx.queue_log.write(chan.uniqueid, waiter.queue, NO_AGENT, logged, pos,
                                     waiter.original_position, held)
        return True

    def _cancel_rings(self, waiter: Waiter, keep: Operator | None = None) -> None:
        """Stop ringing every member rung for ``waiter`` (except ``keep``, who answered)."""
        rings, waiter.ringing = waiter.ringing, []
        for op, op_chan, call in rings:
            self._rung[op.name] -= 1
            if op is keep:
                continue
            if call.active():
                call.cancel()
            op_chan.emit(ev.two_channel_event("DialEnd", ev.CALL, waiter.chan, op_chan,
                                              ("DialStatus", "CANCEL")))
            op_chan.request_hangup(16, by="pbx", soft=True)
            op_chan.destroy()
            op.busy = False
            self._member_status(op, 1)

    def release(self, op: Operator) -> None:
        op.busy = False
        self._member_status(op, 1)
        self.refresh()

    # dispatch ----------------------------------------------------------------------------
    def _dispatch(self, queue: str) -> None:
        line = self.waiting.get(queue, [])
        ring_all = self.strategies.get(queue) == "ringall"
        for waiter in line:
            if waiter.ringing:
                continue
            free = [o for o in self.members(queue) if self._can_ring(o)]
            if not free:
                break
            for op in free if ring_all else free[:1]:
                self._ring(waiter, op)
        self._leave_if_empty(queue)

    def _can_ring(self, op: Operator) -> bool:
        """can_ring_entry() with ringinuse=no: not paused, not on a call or rung, and a device
        that can be reached."""
        return op.available and not op.busy and self.device_state(op) not in UNREACHABLE

    def _leave_if_empty(self, queue: str) -> None:
        """leavewhenempty: every caller of ``queue`` not being rung leaves (EXITEMPTY,
        record_abandoned()); one being rung is in try_calling() and waits for its end."""
        conditions = self.leavewhenempty.get(queue, frozenset())
        if not conditions or not self.is_empty(queue, conditions):
            return
        for waiter in [w for w in self.waiting.get(queue, []) if not w.ringing]:
            self._abandon(waiter, "EXITEMPTY")
            if not waiter.done.called:
                waiter.done.callback(LEAVE_EMPTY)

    def _ring(self, waiter: Waiter, op: Operator) -> None:
        pbx = self.pbx
        chan = waiter.chan
        op.busy = True
        op_chan = pbx.new_channel(
            f"{op.interface}-{pbx.next_channel_seq():08x}", "PJSIP", context="from-internal",
            exten="s", linkedid=chan.linkedid, state=State.DOWN, caller_num=chan.caller_num,
            caller_name=chan.caller_name, language=chan.language,
        )
        member = (("Queue", waiter.queue), ("Interface", op.interface), ("MemberName", op.name))
        chan.emit(ev.two_channel_event("AgentCalled", ev.AGENT, chan, op_chan, *member))
        chan.emit(ev.two_channel_event("DialBegin", ev.CALL, chan, op_chan,
                                       ("DialString", op.name)))
        op_chan.set_state(State.RINGING)
        chan.emit(ev.two_channel_event("DialState", ev.CALL, chan, op_chan,
                                       ("DialStatus", "RINGING")))
        self._member_status(op, 6)
        if not waiter.ringing:
            waiter.rang_at = pbx.clock.elapsed()
        call = pbx.clock.call_later(op.answer_delay_s, self._answered, waiter, op)
        waiter.ringing.append((op, op_chan, call))
        self._rung[op.name] += 1

    def _answered(self, waiter: Waiter, op: Operator) -> None:
        rung = next((r for r in waiter.ringing if r[0] is op), None)
        if rung is None:
            return
        op_chan = rung[1]
        self._cancel_rings(waiter, keep=op)
        line = self.waiting.get(waiter.queue, [])
        pos = line.index(waiter) + 1 if waiter in line else 1
        if waiter in line:
            line.remove(waiter)
        chan = waiter.chan
        now = self.pbx.clock.elapsed()
        op_chan.answer()
        chan.emit(ev.two_channel_event("DialEnd", ev.CALL, chan, op_chan,
                                       ("DialStatus", "ANSWER")))
        chan.emit(ev.channel_event("QueueCallerLeave", ev.AGENT, chan, ("Queue", waiter.queue),
                                   ("Position", str(pos)), ("Count", str(len(line)))))
        hold, ring = int(now - waiter.joined_at), int(now - waiter.rang_at)
        chan.emit(ev.two_channel_event(
            "AgentConnect", ev.AGENT, chan, op_chan, ("Queue", waiter.queue),
            ("Interface", op.interface), ("MemberName", op.name), ("HoldTime", str(hold)),
            ("RingTime", str(ring)),
        ))
        self.pbx.queue_log.write(chan.uniqueid, waiter.queue, op.name, "CONNECT", hold,
                                 op_chan.uniqueid, ring)
        if waiter.queue in self.interface_vars:  # app_queue, just before the bridge
            for party in (chan, op_chan):
                self._set_interface_vars(party, op)
        op.calls_taken += 1
        op.last_call = int(self.pbx.clock.now())
        self._member_status(op, 2)
        if not waiter.done.called:
            waiter.done.callback(Connection(op, op_chan, hold, ring))
        self.refresh()  # members whose ringing was cancelled

    @staticmethod
    def _set_interface_vars(chan: Channel, op: Operator) -> None:
        """setinterfacevar: the member's MEMBER* variables, as app_queue sets them."""
        for name, value in (("MEMBERINTERFACE", op.interface), ("MEMBERNAME", op.name),
                            ("MEMBERCALLS", str(op.calls_taken)),
                            ("MEMBERLASTCALL", str(op.last_call)), ("MEMBERPENALTY", "0"),
                            ("MEMBERDYNAMIC", "0"), ("MEMBERREALTIME", "0")):
            chan.set_var(name, value)

    def _queues_of(self, op: Operator) -> tuple[str, ...]:
        """The queues ``op`` is a member of (each one reports its members' changes)."""
        return op.queues or tuple(self.strategies) or ("operators",)

    def _member_status(self, op: Operator, status: int) -> None:
        for queue in self._queues_of(op):
            self._member_status_in(queue, op, status)

    def _member_status_in(self, queue: str, op: Operator, status: int) -> None:
        self.pbx.events.publish(ev.Event("QueueMemberStatus", ev.AGENT, [
            ("Queue", queue),
            ("MemberName", op.name), ("Interface", op.interface),
            ("StateInterface", op.interface), ("Membership", "static"), ("Penalty", "0"),
            ("CallsTaken", str(op.calls_taken)), ("LastCall", str(op.last_call)),
            ("LastPause", "0"), ("LoginTime", str(op.login_time)),
            ("InCall", "1" if status == 2 else "0"), ("Status", str(status)),
            ("Paused", "0" if op.available else "1"),
            ("PausedReason", ""), ("Ringinuse", "0"), ("Wrapuptime", "0"),
        ]))

    def _member_event(self, name: str, op: Operator) -> None:
        """app_queue's QueueMemberAdded, QueueMemberPause or QueueMemberRemoved, once per
        queue the member serves."""
        for queue in self._queues_of(op):
            self.pbx.events.publish(ev.Event(name, ev.AGENT, [
                ("Queue", queue), ("MemberName", op.name), ("Interface", op.interface),
                ("StateInterface", op.interface), ("Membership", "static"),
                ("Penalty", "0"), ("CallsTaken", str(op.calls_taken)),
                ("LastCall", str(op.last_call)), ("LastPause", "0"),
                ("LoginTime", str(op.login_time)), ("InCall", "1" if op.busy else "0"),
                ("Status", "2" if op.busy else "1"), ("Paused", "0" if op.available else "1"),
                ("PausedReason", ""), ("Ringinuse", "0"), ("Wrapuptime", "0"),
            ]))
