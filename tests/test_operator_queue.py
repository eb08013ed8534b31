"""Wire-level: the engine records each caller's wait in the operator queue from AMI events,
and turns alarm-box spool files into emergency orders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dispatch.alarm_codes import load_code_map
from dispatch.db import make_sync_engine
from dispatch.models import QueueCall, WorkOrder
from dispatch.phones import national
from ivr.alarm_service import scan_once
from ivr.demo.scenario import prompt_seconds
from tests.callstack import CallStack, open_stack

DEADLINE_S = 20.0


async def queue_record(stack: CallStack, uniqueid: str, until: str) -> Any:
    """The queue_calls row of ``uniqueid`` once its ``until`` field is set."""
    rows = await stack.poll(
        select(QueueCall).where(QueueCall.uniqueid == uniqueid),
        lambda rows: bool(rows) and getattr(rows[0], until) is not None,
        timeout_s=20.0,
    )
    return rows[0] if rows else None


async def test_answered_and_abandoned_waits_are_recorded(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=60, ami=True):
        unknown = national(stack.numbers["unknown"][0])
        answered = await stack.call(unknown)
        row = await queue_record(stack, answered["uniqueid"], "answered_at")
        assert (row.reason, row.priority, row.outcome) == ("unknown_caller", 0, "answered")
        assert row.queued_at <= row.joined_at <= row.answered_at
        assert row.operator

        await stack.sim.request("operators", operators=[
            {"name": "slow", "answer_delay_s": 120.0, "talk_s": 5.0, "available": True}])
        waited = prompt_seconds("emergency") + 10.0  # hangs up ten seconds into the queue
        gave_up = await stack.call(national(stack.numbers["handsets"][0]), hangup_after=waited)
        row = await queue_record(stack, gave_up["uniqueid"], "abandoned_at")
        assert (row.reason, row.priority, row.outcome) == ("handset_emergency", 10, "abandoned")
        assert row.answered_at is None


async def test_alarm_box_files_become_emergency_orders_or_quarantine(tmp_path: Path) -> None:
    spool = tmp_path / "alarms"
    spool.mkdir()
    async for stack in open_stack("embedded", tmp_path, elders=60,
                                  sim_args=("--alarm-spool", str(spool))):
        line = stack.numbers["handsets"][1]
        await stack.sim.request("alarm", account="4321", line=national(line), caller_name="",
                                events=[{"code": "101", "qualifier": 1, "zone": "001"}])
        await stack.sim.request("alarm", account="4321", line=national(line), caller_name="",
                                events=[{"code": "101", "qualifier": 1, "zone": "001"}],
                                corrupt="bad_checksum")
        assert stack.engine is not None and stack.engine.context is not None
        ctx = stack.engine.context
        assert await scan_once(ctx, load_code_map()) == 1
        assert await scan_once(ctx, load_code_map()) == 0  # each file once
        quarantined = sorted(p.name for p in (spool / "quarantine").iterdir())
        assert len(quarantined) == 2 and quarantined[1] == quarantined[0] + ".reason"
        assert len(list((spool / "processed").glob("event-*"))) == 1
        engine = make_sync_engine(stack.db_url)
        with engine.connect() as conn:
            services = conn.execute(select(WorkOrder.service)).scalars().all()
        engine.dispose()
        assert services == ["emergency"]
        kinds = [json.loads(f[b"data"]).get("reason") for _, f in
                 await ctx.live._client.xrange(ctx.live.stream_key)
                 if f[b"type"] == b"alarm_alert"]
        assert "quarantined_file" in kinds
