"""Queue() with scripted operators: QUEUE_PRIO order with ringinuse=no, timeout, abandon, and
the 'c' option. Pure simulator logic: the PBX runs on task.Clock (tests/sim/clocked.py)."""

from __future__ import annotations

import pytest

from tests.sim.clocked import ClockedSim
from tests.sim.conftest import DIALPLANS

PLAN = [DIALPLANS / "queue.conf"]


def caller(number: str, exten: str, **extra) -> dict:
    return {"number": number, "to": exten, "context": "queue-entry", **extra}


def test_higher_priority_caller_is_served_first(sounds) -> None:
    sim = ClockedSim(PLAN, sounds)
    sim.request("operators", operators=[{"name": "op1", "answer_delay_s": 1, "talk_s": 6}])
    first, normal, urgent = sim.calls(
        {"caller": caller("13800000001", "normal")},
        {"caller": caller("13800000002", "normal"), "delay": 2},
        {"caller": caller("13800000003", "emergency"), "delay": 3},
    )
    stats = sim.request("stats")
    assert [c["queue"]["operator"] for c in (first, normal, urgent)] == ["op1"] * 3
    assert first["queue"]["answered_at"] < urgent["queue"]["answered_at"]
    assert urgent["queue"]["answered_at"] < normal["queue"]["answered_at"]
    assert urgent["queue"]["priority"] == 10 and normal["queue"]["priority"] == 0
    assert first["queue"]["answered_at"] - first["queue"]["joined_at"] == pytest.approx(
        1.0, abs=0.02)  # the operator's answer delay, to the hundredth of a second
    # one operator, ringinuse=no: calls never overlap
    assert urgent["queue"]["answered_at"] >= first["queue"]["ended_at"]
    assert normal["queue"]["answered_at"] >= urgent["queue"]["ended_at"]
    for call in (first, normal, urgent):
        assert call["queue"]["left_reason"] == "answered"
        assert call["queue"]["ended_by"] == "operator"
        assert call["hangup_by"] == "pbx"       # no 'c' option: the caller is hung up
        assert "AFTER" not in call["variables"]
    assert stats["queues"]["operators"][0]["calls_taken"] == 3


def test_timeout_abandon_and_continue(sounds) -> None:
    sim = ClockedSim(PLAN, sounds, {"QTIMEOUT": "3"})
    sim.request("operators", operators=[{"name": "op1", "available": False}])
    timed_out, abandoned = sim.calls(
        {"caller": caller("13800000004", "normal")},
        {"caller": caller("13800000005", "normal", hangup_after=1.0)},
    )
    sim.request("operators", operators=[{"name": "op1", "answer_delay_s": 0.5, "talk_s": 1}])
    [continued] = sim.calls({"caller": caller("13800000006", "continue")})
    assert timed_out["variables"]["QUEUESTATUS"] == "TIMEOUT"
    assert timed_out["variables"]["AFTER"] == "TIMEOUT"
    assert timed_out["queue"]["left_reason"] == "timeout"
    assert timed_out["queue"]["ended_at"] - timed_out["queue"]["joined_at"] == pytest.approx(
        3.0, abs=0.02)
    assert abandoned["queue"]["left_reason"] == "abandon"
    assert abandoned["hangup_by"] == "caller"
    assert "QUEUESTATUS" not in abandoned["variables"]
    assert abandoned["variables"]["ABANDONED"] == "TRUE"
    # app_queue's record_abandoned() runs on EXITWITHTIMEOUT as on a hangup
    assert timed_out["variables"]["ABANDONED"] == "TRUE"
    assert continued["queue"]["operator"] == "op1"
    assert continued["variables"]["CONTINUED"] == "yes"
