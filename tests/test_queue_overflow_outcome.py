"""Wire level (engine and simulator over AMI, the shipped dialplan): app_queue reports a caller
whose wait times out with QueueCallerAbandon, then the dialplan moves the caller to the overflow
queue. That caller has not abandoned: the record, the alarm report and the emergency watch see
a caller still waiting; only a channel that hangs up while waiting is an abandonment."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dispatch.alarm_report import alarm_report
from dispatch.models import OrderEvent, QueueCall, WorkOrder
from dispatch.open_alarms import RETRY_EVENT
from dispatch.phones import national
from tests.callstack import CallStack, open_stack

SPEED = 30.0
OVERFLOW_S = 4.0
RETRY = {"retry_interval_s": 3.0, "callback_min_gap_s": 6.0, "callback_max_gap_s": 24.0}
GLOBALS = {"HOTLINE_OVERFLOW_S": str(int(OVERFLOW_S)), "HOTLINE_QUEUE_TIMEOUT": "3000"}
OPERATOR = {"name": "op1", "answer_delay_s": 100_000.0, "talk_s": 5.0,
            "queues": ["operators"]}  # rings in the first queue only, never answers
SUPERVISOR = {"name": "supervisor", "answer_delay_s": 2.0, "talk_s": 5.0,
              "queues": ["operators-overflow"]}
ASLEEP = {**SUPERVISOR, "answer_delay_s": 100_000.0}


async def stack_for(tmp_path: Path, operators: list[dict[str, Any]]):
    async for stack in open_stack("embedded", tmp_path, elders=60, speed=SPEED, ami=True,
                                  sim_globals=GLOBALS, engine_overrides={"emergency": RETRY}):
        await stack.sim.request("operators", operators=operators)
        yield stack


async def waiting_in(stack: CallStack, queue: str) -> None:
    """Until the simulator has a caller waiting in ``queue``."""
    while not (await stack.sim.request("stats"))["queues"]["waiting"].get(queue):
        await asyncio.sleep(0.05)


async def report_figures(stack: CallStack) -> Any:
    assert stack.engine is not None and stack.engine.context is not None
    ctx = stack.engine.context
    now = ctx.now()
    async with ctx.sessions() as session:
        report = await alarm_report(session, now - timedelta(hours=1), now, now)
    return report.emergencies


async def test_a_caller_answered_in_the_overflow_queue_did_not_abandon(tmp_path: Path) -> None:
    async for stack in stack_for(tmp_path, [OPERATOR, SUPERVISOR]):
        result = await stack.call(national(stack.numbers["handsets"][0]))
        assert result["queue"]["name"] == "operators-overflow", result["queue"]
        [row] = await stack.poll(select(QueueCall).where(
            QueueCall.uniqueid == result["uniqueid"]),
            lambda rows: bool(rows) and rows[0].answered_at is not None)
        figures = await report_figures(stack)
    assert (row.outcome, row.operator, row.abandoned_at) == ("answered", "supervisor", None)
    assert (row.answered_at - row.joined_at).total_seconds() >= OVERFLOW_S
    assert (figures.offered, figures.answered, figures.abandoned) == (1, 1, 0)


async def test_the_watch_leaves_an_elder_waiting_in_the_overflow_queue_alone(
        tmp_path: Path) -> None:
    async for stack in stack_for(tmp_path, [OPERATOR, ASLEEP]):
        line = national(stack.numbers["handsets"][0])
        call = asyncio.create_task(stack.call(line, hangup_after=3000.0))
        await waiting_in(stack, "operators-overflow")
        [(order_id, created_at, uniqueid)] = await stack.poll(
            select(WorkOrder.id, WorkOrder.created_at, WorkOrder.call_uniqueid), bool)
        # the QueueCallerAbandon of the first queue has reached the engine
        await stack.poll(select(QueueCall.left_at).where(QueueCall.uniqueid == uniqueid),
                         lambda rows: bool(rows) and rows[0][0] is not None)
        assert stack.engine is not None and stack.engine.emergency_watch is not None
        ctx, watch = stack.engine.context, stack.engine.emergency_watch
        assert ctx is not None
        due = created_at + timedelta(seconds=RETRY["callback_min_gap_s"])
        while ctx.now() < due:  # a callback would be due now if the elder were gone
            await asyncio.sleep(0.05)
        unattended = await watch.check()
        retries = await stack.poll(select(OrderEvent.id).where(
            OrderEvent.order_id == order_id, OrderEvent.kind == RETRY_EVENT),
            lambda rows: True)
        [row] = await stack.poll(select(QueueCall).where(QueueCall.uniqueid == uniqueid), bool)
        still_waiting = (await stack.sim.request("stats"))["queues"]["waiting"]
        call.cancel()
    assert unattended == 0 and retries == []
    assert row.outcome is None and row.abandoned_at is None
    assert still_waiting.get("operators-overflow") == 1


async def test_a_caller_who_hangs_up_while_waiting_abandoned(tmp_path: Path) -> None:
    async for stack in stack_for(tmp_path, [OPERATOR, ASLEEP]):
        # hangs up in the overflow queue, long after the first queue's timeout: a busy
        # machine's delay before the first join (times SPEED on this clock) cannot close
        # the gap between the two abandons
        result = await stack.call(national(stack.numbers["handsets"][0]),
                                  hangup_after=OVERFLOW_S + 60.0)
        assert result["queue"]["name"] == "operators-overflow"
        [row] = await stack.poll(select(QueueCall).where(
            QueueCall.uniqueid == result["uniqueid"]),
            lambda rows: bool(rows) and rows[0].outcome is not None)
        figures = await report_figures(stack)
    assert row.outcome == "abandoned" and row.answered_at is None
    # the last abandon (the hang-up), not the first queue's timeout at OVERFLOW_S
    assert (row.abandoned_at - row.joined_at).total_seconds() > OVERFLOW_S + 1.0
    assert (figures.offered, figures.answered, figures.abandoned) == (1, 0, 1)
