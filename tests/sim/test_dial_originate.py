"""Dial() to scripted phones and Originate with Asterisk's reasons. Pure simulator logic: the
PBX runs on task.Clock (tests/sim/clocked.py), so ring times and timeouts come out exact."""

from __future__ import annotations

import pytest

from tests.sim.clocked import ClockedSim, run_until
from tests.sim.conftest import DIALPLANS

PLAN = [DIALPLANS / "dial.conf"]
PHONES = {
    "13900000001": {"answer": "answer", "ring_s": 1, "hangup_after": 2},
    "13900000002": {"answer": "busy", "ring_s": 0.5},
    "13900000003": {"answer": "noanswer"},
    "13900000004": {"answer": "congestion", "ring_s": 0.5},
    "13900000005": {"answer": "answer", "ring_s": 8},
    "13900000006": {"answer": "answer", "ring_s": 0.5, "script": [{"press": "7", "delay": 0.1}],
                    "hangup_after": 5},
}


def caller(to: str) -> dict:
    return {"number": "12349", "to": to, "context": "dial"}


def test_dial_outcomes(sounds) -> None:
    sim = ClockedSim(PLAN, sounds)
    sim.request("phones", phones=PHONES)
    answered, busy, noanswer, congested, slow, unknown, go_on = sim.calls(
        *[{"caller": caller(n)} for n in ("13900000001", "13900000002", "13900000003",
                                          "13900000004", "13900000005", "13700000000",
                                          "913900000001")]
    )
    assert answered["dial"][0]["status"] == "ANSWER"
    assert answered["variables"]["DIALSTATUS"] == "ANSWER"
    assert "RESULT" not in answered["variables"]          # callee hung up, no 'g': caller too
    assert answered["dial"][0]["ended_at"] - answered["dial"][0]["answered_at"] == pytest.approx(
        2.0, abs=0.02)                                    # the callee's hangup_after
    assert busy["variables"]["RESULT"] == "BUSY"
    assert noanswer["variables"]["RESULT"] == "NOANSWER"
    assert noanswer["ended_at"] - noanswer["started_at"] == pytest.approx(5.0, abs=0.02)
    assert congested["variables"]["RESULT"] == "CONGESTION"
    assert slow["variables"]["RESULT"] == "NOANSWER"      # rings longer than the timeout
    assert unknown["dial"][0]["status"] == "ANSWER"       # default phone answers after 3 s
    assert go_on["variables"]["RESULT"] == "ANSWER"       # 'g': continue after the callee


def test_dial_several_phones_and_caller_giving_up(sounds) -> None:
    sim = ClockedSim(PLAN, sounds)
    sim.request("phones", phones=PHONES)
    both, gave_up = sim.calls({"caller": caller("both")},
                              {"caller": {**caller("slow"), "hangup_after": 2}})
    stats = sim.request("stats")
    assert both["dial"][0]["status"] == "ANSWER"          # the busy phone does not matter
    assert gave_up["dial"][0]["status"] == "CANCEL"
    assert gave_up["variables"]["DIALSTATUS"] == "CANCEL"
    assert gave_up["hangup_by"] == "caller"
    assert gave_up["ended_at"] - gave_up["answered_at"] == pytest.approx(2.0, abs=0.02)
    assert stats["channels"] == 0                          # every leg was hung up


def test_originate_reasons(sounds) -> None:
    sim = ClockedSim(PLAN, sounds)
    sim.request("phones", phones=PHONES)
    results = run_until(sim.reactor, *[
        sim.start("originate", channel=channel, context="callee-greeting", exten="s",
                  caller_id='"Hotline" <12349>', timeout_ms=4000, variables={"ORDER_ID": "77"})
        for channel in ("PJSIP/13900000006@trunk", "PJSIP/13900000002@trunk",
                        "PJSIP/13900000003@trunk", "PJSIP/13900000004@trunk",
                        "Local/13900000005@vendors/n", "Bogus/123")
    ])
    app = sim.request("originate", channel="PJSIP/13900000006@trunk", application="Playback",
                      data="beep")
    assert [r["reason"] for r in results] == [4, 5, 3, 8, 3, 0]
    answered = results[0]
    assert answered["channel"].startswith("PJSIP/trunk-")
    assert answered["uniqueid"] == answered["call"]["uniqueid"]
    call = answered["call"]
    assert call["kind"] == "outbound"
    assert call["variables"]["ORDER_ID"] == "77"
    assert call["variables"]["KEY"] == "7"
    assert call["pressed"][0][1] == "7"
    assert all(r["uniqueid"] is None and r["channel"] is None for r in results[1:])
    assert app["reason"] == 4
    assert [a[1:] for a in app["call"]["apps"]] == [["Playback", "beep"]]
