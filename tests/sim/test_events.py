"""Channel events: header names, order and privilege as in the Asterisk 22 AMI traces.

The PBX runs in-process on Twisted's deterministic task.Clock (no network is involved in
these flows), and its event bus is compared with tests/data/asterisk-traces/*.ami.txt.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.task import Clock

from sim.clock import SimClock
from sim.dialplan.parser import parse_text
from sim.events import Event
from sim.pbx import OriginateRequest, Pbx
from sim.sounds import SoundLibrary
from tests.sim.clocked import run_until
from tests.traces import read_trace

PLAN = """
[from-pstn]
exten => 12349,1,Answer()
 same => n,Set(CHOICE=1)
 same => n,UserEvent(TraceDone,Status: FAILURE,Choice: 1)
 same => n,Hangup()

[vendor-offer]
exten => s,1,NoOp(offer)
 same => n,Hangup()
"""


def trace_events(name: str) -> list[Event]:
    events, current = [], None
    for line in read_trace(name):
        if line.side != "S":
            continue
        text = line.text.rstrip("\r")
        if not text:
            if current is not None:
                events.append(current)
            current = None
            continue
        key, _, value = text.partition(": ")
        if key == "Event":
            current = Event(value, "", [])
        elif current is not None and key == "Privilege":
            current.privilege = value
        elif current is not None:
            current.headers.append((key, value))
    return events


def make_pbx(sounds: Path) -> tuple[Clock, Pbx, list[Event]]:
    reactor = Clock()
    pbx = Pbx(reactor, SimClock(reactor, 1.0, origin=1795346825.0), parse_text(PLAN),
              SoundLibrary(sounds))
    events: list[Event] = []
    pbx.events.subscribe(events.append)
    return reactor, pbx, events


def suffix(event: Event) -> str:
    channel = event.get("Channel") or event.get("DestChannel") or event.get("LocalOneChannel")
    return channel[-2:] if channel and channel[-2] == ";" else ""


def test_channel_event_headers_match_the_inbound_trace(sounds: Path) -> None:
    reactor, pbx, events = make_pbx(sounds)
    run_until(reactor, pbx.call({"number": "13800138000", "name": "Zhang Lan", "to": "12349",
                             "channel": "Local/s@caller-keys"}))
    expected = {e.name: e for e in trace_events("inbound_menu.ami.txt")
                if suffix(e) in (";1", "")}
    ours = {}
    for event in events:
        ours.setdefault(event.name, event)
    for name in ("Newexten", "VarSet", "Newstate", "UserEvent", "SoftHangupRequest", "Hangup"):
        want, got = expected[name], ours[name]
        assert [k for k, _ in got.headers] == [k for k, _ in want.headers], name
        assert got.privilege == want.privilege, name
    assert ours["UserEvent"].headers[-3:] == [("UserEvent", "TraceDone"), ("Status", "FAILURE"),
                                              ("Choice", "1")]
    assert ours["Hangup"].headers[-2:] == [("Cause", "16"), ("Cause-txt", "Normal Clearing")]
    newchannel = ours["Newchannel"]
    assert newchannel.get("CallerIDName") == "Zhang Lan"
    assert newchannel.get("Uniqueid") == newchannel.get("Linkedid") == "1795346825.0"
    assert [e.name for e in events if e.get("Uniqueid") == "1795346825.0"] == [
        "Newchannel", "Newexten", "Newstate", "Newexten", "VarSet", "Newexten", "UserEvent",
        "Newexten", "SoftHangupRequest", "Hangup",
    ]


def _sequence(events: list[Event]) -> list[tuple[str, str]]:
    skip = {"DeviceStateChange", "OriginateResponse", "NewCallerid", "NewConnectedLine",
            "FullyBooted", "SuccessfulAuth"}
    return [(e.name, suffix(e)) for e in events
            if e.name not in skip and not (e.name == "Newexten" and suffix(e) == ";2")]


@pytest.mark.parametrize(("behaviour", "reason"), [
    ("busy", 5), ("congestion", 8), ("noanswer", 3), ("answers", 4),
])
def test_local_originate_events_follow_the_traces(sounds: Path, behaviour: str,
                                                  reason: int) -> None:
    reactor, pbx, events = make_pbx(sounds)
    mode = {"answers": "answer"}.get(behaviour, behaviour)
    ring = 0.0 if behaviour == "answers" else 0.2     # the traced callee answered at once
    pbx.phones.update({f"s@callee-{behaviour}": {"answer": mode, "ring_s": ring,
                                                 "hangup_after": None}})
    [result] = run_until(reactor, pbx.originate(OriginateRequest(
        channel=f"Local/s@callee-{behaviour}/n", context="vendor-offer", exten="s",
        timeout_ms=4000, variables={"ORDER_ID": "78"})))
    assert result.reason == reason
    if result.ended is not None:
        run_until(reactor, result.ended)
    expected = _sequence(trace_events(f"outbound_{behaviour.replace('answers', 'answered')}"
                                      ".ami.txt"))
    got = _sequence(events)
    if behaviour == "answers":
        # the trace runs AGI in the middle; compare the set-up and the tear-down
        cut = expected.index(("DialEnd", ";1")) + 1
        assert got[:cut] == expected[:cut]
        assert got[-6:] == expected[-6:]
    else:
        assert got == expected
