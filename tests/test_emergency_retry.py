"""An emergency nobody answers stays open: the engine re-alerts the consoles and calls the elder
back into the operator queue until an operator answers or a disposition closes the alarm.

Wire level (engine and simulator over AMI and FastAGI, the shipped dialplan) for the watch;
the worklist on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.calls import record_call
from dispatch.dispositions import close_alarm
from dispatch.models import Elder, ElderPhone, OrderEvent, QueueCall, WorkOrder
from dispatch.open_alarms import CALLBACK_REASON, RETRY_EVENT, backoff_s
from dispatch.orders import ServiceType, add_order_event, create_order
from dispatch.phones import mask, national
from dispatch.queue_calls import note_queue_event
from dispatch.spool_replay import replay_spool
from dispatch.worklist import (
    AWAITING_DISPOSITION,
    CALL_BACK,
    UNATTENDED,
    format_worklist,
    worklist,
)
from ivr.engine import Engine
from tests.callstack import CallStack, open_stack, until

SPEED = 30.0
RETRY = {"retry_interval_s": 3.0, "callback_min_gap_s": 6.0, "callback_max_gap_s": 24.0}
RING_S = 4.0
GLOBALS = {"HOTLINE_OVERFLOW_S": "4", "HOTLINE_QUEUE_TIMEOUT": "4"}
SLEEPY = [{"name": "op1", "answer_delay_s": 100_000.0, "talk_s": 5.0}]  # rings, never answers
AWAKE = [{"name": "op1", "answer_delay_s": 1.0, "talk_s": 3.0}]
ANSWERS = {"answer": "answer", "ring_s": 1.0, "hangup_after": None, "script": []}
NO_ANSWER = {"answer": "noanswer"}


async def retry_stack(tmp_path: Path, kind: str = "embedded") -> AsyncIterator[CallStack]:
    async for stack in open_stack(kind, tmp_path, elders=60, speed=SPEED, ami=True,
                                  sim_globals=GLOBALS,
                                  engine_overrides={"emergency": RETRY,
                                                    "dial": {"ring_timeout_s": RING_S}}):
        await stack.sim.request("operators", operators=SLEEPY)
        yield stack


async def emergency_nobody_answers(stack: CallStack, elder_phone: dict[str, Any]
                                   ) -> tuple[str, WorkOrder]:
    """A handset emergency call the operators let ring out: (handset line, its order)."""
    line = stack.numbers["handsets"][0]
    await stack.sim.request("phones", phones={national(line): elder_phone})
    result = await stack.call(national(line))
    assert result["queue"] is not None and result["queue"].get("operator") is None, result
    _, order = stack.record(result["uniqueid"])
    assert order is not None and order.service == "emergency"
    return line, order


async def callbacks(stack: CallStack, order_id: int,
                    done: Callable[[list[dict[str, Any]]], bool] = bool,
                    timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The order's ``emergency_retry`` events (detail plus ``at``), read until ``done``."""
    def details(rows: list[Any]) -> list[dict[str, Any]]:
        return [{**detail, "at": at} for detail, at in rows]

    rows = await stack.poll(
        select(OrderEvent.detail, OrderEvent.at)
        .where(OrderEvent.order_id == order_id, OrderEvent.kind == RETRY_EVENT)
        .order_by(OrderEvent.id),
        lambda rows: done(details(rows)), timeout_s=timeout_s)
    return details(rows)


async def stream(stack: CallStack, kind: str) -> list[dict[str, Any]]:
    """Payloads of the ``kind`` events on the consoles' event stream, oldest first."""
    assert stack.engine is not None and stack.engine.context is not None
    live = stack.engine.context.live
    return [json.loads(fields[b"data"]) for _, fields in
            await live._client.xrange(live.stream_key) if fields[b"type"] == kind.encode()]


async def watch_passes(stack: CallStack, passes: int, engine_s: float = 0.0) -> None:
    """Until the engine's emergency watch has finished ``passes`` more checks (one under way
    now is the first: two make one whole check from now on) and ``engine_s`` seconds of
    engine time have passed."""
    assert stack.engine is not None and stack.engine.emergency_watch is not None
    assert stack.engine.context is not None
    watch, ctx = stack.engine.emergency_watch, stack.engine.context
    target, until_at = watch.passes + passes, ctx.now() + timedelta(seconds=engine_s)
    await until(lambda: watch.passes >= target and ctx.now() >= until_at,
                f"{passes} checks of the emergency watch")


async def test_unanswered_emergency_is_called_back_until_an_operator_answers(
        tmp_path: Path) -> None:
    async for stack in retry_stack(tmp_path):
        line, order = await emergency_nobody_answers(stack, ANSWERS)
        # the elder answers each callback, which waits in the queue, unanswered again
        unanswered = await stack.poll(
            select(QueueCall.uniqueid)
            .where(QueueCall.reason == CALLBACK_REASON, QueueCall.outcome == "unanswered"),
            lambda rows: len(rows) >= 2)
        first = await callbacks(stack, order.id)
        assert [(d["attempt"], d["outcome"]) for d in first[:2]] == [(1, "answered"),
                                                                    (2, "answered")]
        assert {uid for (uid,) in unanswered[:2]} == {d["uniqueid"] for d in first[:2]}
        assert first[0]["number"] == mask(line)
        await stack.sim.request("operators", operators=AWAKE)
        rows = await stack.poll(
            select(QueueCall.uniqueid, QueueCall.priority, QueueCall.operator)
            .where(QueueCall.reason == CALLBACK_REASON, QueueCall.outcome == "answered"),
            bool)
        [(answered, priority, operator)] = rows
        assert (priority, operator) == (10, "op1")
        await watch_passes(stack, 3, RETRY["callback_max_gap_s"] + 3 * RETRY["retry_interval_s"])
        timeline = await callbacks(stack, order.id)
        assert timeline[-1]["uniqueid"] == answered  # the answered callback was the last one
        assert len(timeline) >= 3
        assert [d["attempt"] for d in timeline] == list(range(1, len(timeline) + 1))
        assert all(d["outcome"] == "answered" for d in timeline)

        alerts = [a for a in await stream(stack, "emergency_open")
                  if a["order_no"] == order.order_no]
        assert len(alerts) >= 2 and alerts[-1]["attempts"] >= 1
        assert [a["attempts"] for a in alerts] == sorted(a["attempts"] for a in alerts)
        called_back = {d["uniqueid"] for d in timeline}
        pops = {p["uniqueid"]: p for p in await stream(stack, "screen_pop")}
        assert called_back <= set(pops)
        pop = pops[answered]
        assert (pop["reason"], pop["priority"], pop["order_no"]) == (
            CALLBACK_REASON, 10, order.order_no)
        assert pop["profile"]["elder_id"] == order.elder_id
        overflowed = {o["uniqueid"] for o in await stream(stack, "overflow")}
        assert {d["uniqueid"] for d in timeline[:-1]} <= overflowed  # supervisor rang too

        # the unanswered callbacks were spooled by the dialplan; the replay opens no order
        assert stack.engine is not None and stack.engine.context is not None
        ctx = stack.engine.context
        report = await replay_spool(ctx.writing, stack.settings.spool.dir,
                                    stack.settings.ivr.local_area_code, ctx.now())
        assert report.created == [] and report.alerts == []
        assert set(report.callbacks) == {d["uniqueid"] for d in timeline[:-1]}
        [(status,)] = await stack.poll(select(WorkOrder.status)
                                       .where(WorkOrder.service == ServiceType.EMERGENCY),
                                       bool)
        assert status == "new"  # open until a disposition; now awaiting one
        async with ctx.sessions() as session:
            items = await worklist(session, ctx.now(), 3600.0, 3600.0)
        assert [(i.section, i.order_no) for i in items if i.order_no] == [
            (AWAITING_DISPOSITION, order.order_no)]


async def test_elder_who_does_not_answer_is_tried_again_later(tmp_path: Path) -> None:
    async for stack in retry_stack(tmp_path):
        _, order = await emergency_nobody_answers(stack, NO_ANSWER)
        timeline = await callbacks(stack, order.id, lambda rows: len(rows) >= 3)
        assert [(d["attempt"], d["outcome"], d["uniqueid"]) for d in timeline[:3]] == [
            (1, "no_answer", None), (2, "no_answer", None), (3, "no_answer", None)]
        # each callback waits twice as long after the previous one, up to the maximum
        for n, (earlier, later) in enumerate(itertools.pairwise(timeline[:3]), 1):
            started = datetime.fromisoformat(later["started_at"])
            assert started - earlier["at"] >= timedelta(seconds=backoff_s(
                n, RETRY["callback_min_gap_s"], RETRY["callback_max_gap_s"]))
        alerts = [a for a in await stream(stack, "emergency_open")
                  if a["order_no"] == order.order_no]
        assert {a["last_outcome"] for a in alerts if a["attempts"]} == {"no_answer"}
        assert max(a["attempts"] for a in alerts) >= 2
        _, still = stack.record(order.call_uniqueid or "")
        assert still is not None and still.status == "new"


async def test_a_disposition_stops_the_callbacks(tmp_path: Path) -> None:
    async for stack in retry_stack(tmp_path):
        _, order = await emergency_nobody_answers(stack, NO_ANSWER)
        await callbacks(stack, order.id)
        assert stack.engine is not None and stack.engine.context is not None
        ctx = stack.engine.context
        closed_at = ctx.now()
        async with ctx.sessions() as session:
            await close_alarm(session, order.order_no, "no_response", "op7", closed_at)
        await watch_passes(stack, 2)  # a check that read the alarm still open has ended
        alerted = len(await stream(stack, "emergency_open"))
        await watch_passes(stack, 3, RETRY["callback_max_gap_s"] + RING_S
                           + 3 * RETRY["retry_interval_s"])
        timeline = await callbacks(stack, order.id)
        assert all(datetime.fromisoformat(d["started_at"]) < closed_at for d in timeline)
        assert len(await stream(stack, "emergency_open")) == alerted
        async with ctx.sessions() as session:
            items = await worklist(session, ctx.now(), 3600.0, 3600.0)
        assert [i for i in items if i.order_no == order.order_no] == []


async def test_two_engines_never_call_the_elder_at_once(tmp_path: Path) -> None:
    async for stack in retry_stack(tmp_path, "server"):
        assert stack.engine is not None
        second = Engine(stack.settings, clock=stack.engine.clock)
        await second.start(migrate=False, connect_ami=True)
        try:
            _, order = await emergency_nobody_answers(stack, NO_ANSWER)
            timeline = await callbacks(stack, order.id, lambda rows: len(rows) >= 3)
            originated = [call for call in
                          (await stack.sim.request("originated"))["originated"]
                          if call["context"] == "hotline-emergency-callback"]
        finally:
            await second.stop()
        starts = sorted(call["at"] for call in originated)
        assert all(b - a >= RING_S for a, b in itertools.pairwise(starts)), starts
        assert len(originated) - len(timeline) in (0, 1)  # one may ring, not yet recorded
        assert [d["attempt"] for d in timeline] == list(range(1, len(timeline) + 1))


def test_backoff_doubles_up_to_the_maximum() -> None:
    assert [backoff_s(n, 120.0, 900.0) for n in range(6)] == [120, 240, 480, 900, 900, 900]
    assert backoff_s(10_000, 1.0, 60.0) == 60.0


# -- the worklist, on both backends ---------------------------------------------------------

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def _elder(session: AsyncSession, name: str, phones: dict[str, str]) -> int:
    elder = Elder(name=name, address=f"{name}家", created_at=NOW)
    session.add(elder)
    await session.flush()
    session.add_all(ElderPhone(elder_id=elder.id, number_e164=number, kind=kind)
                    for number, kind in phones.items())
    await session.commit()
    return elder.id


async def _emergency(session: AsyncSession, elder_id: int, uid: str | None,
                     minutes_ago: float) -> tuple[int, str]:
    order = await create_order(session, elder_id=elder_id, service=ServiceType.EMERGENCY,
                               source="handset", call_uniqueid=uid, requested_by="elder",
                               at=NOW - timedelta(minutes=minutes_ago))
    assert order.order_no is not None
    return order.id, order.order_no


async def _queued(session: AsyncSession, uid: str, minutes_ago: float, reason: str,
                  outcome: str | None, caller: str = "13800138000") -> None:
    at = NOW - timedelta(minutes=minutes_ago)
    await note_queue_event(session, uid, queued_at=at, joined_at=at, reason=reason,
                           caller_number=caller, priority=10)
    if outcome == "answered":
        await note_queue_event(session, uid, answered_at=at + timedelta(seconds=20),
                               outcome=outcome, operator="op1")
    elif outcome is not None:
        await note_queue_event(session, uid, left_at=at + timedelta(seconds=60),
                               outcome=outcome)


async def test_worklist_puts_open_unattended_emergencies_first(db_session: AsyncSession
                                                               ) -> None:
    wang = await _elder(db_session, "王桂兰", {"+8613800138001": "mobile",
                                            "+8613900139002": "handset"})
    li = await _elder(db_session, "李淑芬", {"+869318123456": "landline"})
    zhao = await _elder(db_session, "赵建国", {"+8613700137003": "mobile"})
    # answered by an operator on the engine's second callback: awaiting a disposition
    answered_id, answered_no = await _emergency(db_session, zhao, "1.1", 50)
    await _queued(db_session, "1.1", 50, "handset_emergency", "unanswered")
    for attempt, uid in ((1, None), (2, "1.9")):
        await add_order_event(db_session, answered_id, RETRY_EVENT,
                              NOW - timedelta(minutes=40 - attempt),
                              {"attempt": attempt, "outcome": "answered" if uid else "busy",
                               "uniqueid": uid})
    await _queued(db_session, "1.9", 38, CALLBACK_REASON, "answered")
    # unanswered, called back twice without reaching the elder
    old_id, old_no = await _emergency(db_session, wang, "2.1", 30)
    await _queued(db_session, "2.1", 30, "handset_emergency", "abandoned")
    for attempt in (1, 2):
        await add_order_event(db_session, old_id, RETRY_EVENT,
                              NOW - timedelta(minutes=20 - attempt),
                              {"attempt": attempt, "outcome": "no_answer", "uniqueid": None})
    await _queued(db_session, "2.9", 19, CALLBACK_REASON, "unanswered")  # not a call-back
    # an alarm-box emergency: no call at all
    _, alarm_no = await _emergency(db_session, li, None, 10)
    # waiting in the queue right now
    _, waiting_no = await _emergency(db_session, zhao, "3.1", 1)
    await _queued(db_session, "3.1", 1, "caller_emergency", None)
    # closed with a disposition: off the list
    _, closed_no = await _emergency(db_session, wang, "4.1", 60)
    await close_alarm(db_session, closed_no, "accidental", "op7", NOW - timedelta(minutes=55))
    # callers to call back: an unanswered ordinary wait and a hang-up before choosing
    await _queued(db_session, "5.1", 15, "unknown_caller", "unanswered", caller="13600136000")
    await _queued(db_session, "5.2", 14, "caller_request", "answered")
    await record_call(db_session, uniqueid="6.1", linkedid="6.1", channel="PJSIP/pstn-1",
                      direction="inbound", caller_number="+8613500135000",
                      identity_status="elder", elder_id=li,
                      started_at=NOW - timedelta(minutes=5), ended_at=NOW,
                      disposition="abandoned", reason="callback_needed")
    await record_call(db_session, uniqueid="6.2", linkedid="6.2", channel="PJSIP/pstn-2",
                      direction="inbound", caller_number="+8613500135009",
                      identity_status="elder", elder_id=li,
                      started_at=NOW - timedelta(days=2), ended_at=NOW - timedelta(days=2),
                      disposition="abandoned", reason="callback_needed")  # out of the window

    items = await worklist(db_session, NOW, 3600.0, 86_400.0)
    assert [(i.section, i.order_no) for i in items] == [
        (UNATTENDED, old_no), (UNATTENDED, alarm_no), (UNATTENDED, waiting_no),
        (AWAITING_DISPOSITION, answered_no), (CALL_BACK, None), (CALL_BACK, None)]
    old, alarm, waiting, answered, wait, hung_up = items
    assert (old.elder_name, old.attempts, old.phone) == ("王桂兰", 2, "+86139******02")
    assert old.note == "nobody on it; callbacks 2, last no_answer"
    assert (alarm.phone, alarm.address) == ("+86931*****56", "李淑芬家")
    assert waiting.note == "in the queue now"
    assert answered.note.startswith("answered by an operator")
    assert (wait.phone, hung_up.phone) == ("136******00", "+86135******00")
    text = format_worklist(items, NOW, 86_400.0)
    lines = text.splitlines()
    assert lines[1] == "1. Open emergencies no operator has answered: 3"
    assert lines[2].startswith(f"   {old_no}  王桂兰  +86139******02  30 min ago  nobody on it")
    assert "13900139002" not in text and "13800138001" not in text


def test_cli_worklist(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    from ivr.cli import main

    monkeypatch.setenv("HOTLINE_DATABASE__URL", f"sqlite:///{tmp_path / 'h.sqlite3'}")
    monkeypatch.setenv("HOTLINE_AMI__ENABLED", "false")
    assert main(["worklist", "--hours", "2"]) == 0
    out = capsys.readouterr().out
    assert "1. Open emergencies no operator has answered: 0" in out
    assert "3. Callers to call back, last 2 h: 0" in out


def test_callback_gaps_are_validated() -> None:
    from ivr.config import ConfigError, load_settings

    settings = load_settings(None, ami={"enabled": False},
                             emergency={"callback_min_gap_s": 30, "callback_max_gap_s": 30})
    assert settings.emergency.retry_interval_s == 60.0
    with pytest.raises(ConfigError, match="callback_min_gap_s must not exceed"):
        load_settings(None, ami={"enabled": False},
                      emergency={"callback_min_gap_s": 600, "callback_max_gap_s": 300})
    with pytest.raises(ConfigError, match="retry_interval_s"):
        load_settings(None, ami={"enabled": False}, emergency={"retry_interval_s": 0})
