"""Wire-level: the engine records each caller's wait in the operator queue from AMI events,
the reassurance plays in the queue while the operators' phones ring, and alarm-box spool files
become emergency orders."""

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
from tests.test_inbound_calls import LISTEN, MENU_KEY_DELAY, press, reassured_in_queue

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
        waited = 20.0  # hangs up in the first queue (the overflow starts after 30 s there)
        gave_up = await stack.call(national(stack.numbers["handsets"][0]), hangup_after=waited)
        row = await queue_record(stack, gave_up["uniqueid"], "abandoned_at")
        assert (row.reason, row.priority, row.outcome) == ("handset_emergency", 10, "abandoned")
        assert row.answered_at is None


async def test_the_reassurance_plays_in_the_queue_while_the_operators_ring(tmp_path: Path
                                                                           ) -> None:
    """No prompt between the engine's decision and the operators' phones: the queue's hold
    class (asterisk_conf/musiconhold.conf, by reason and language) says it instead."""
    async for stack in open_stack("embedded", tmp_path):
        handset = await stack.call(national(stack.numbers["handsets"][0]))
        menu = [LISTEN, press("9", MENU_KEY_DELAY)]
        yue_help = await stack.call(national(stack.elder_number("yue", 0)), menu)
        menu = [LISTEN, press("0", MENU_KEY_DELAY)]
        yue_asks = await stack.call(national(stack.elder_number("yue", 1)), menu)
        en_asks = await stack.call(national(stack.elder_number("en", 0)), menu)
        unknown = await stack.call(national(stack.numbers["unknown"][0]))
    assert reassured_in_queue(handset) == "emergency"
    queue = handset["queue"]
    # an operator answered while the reassurance was still playing: ringing began at the join
    assert queue["answered_at"] - queue["joined_at"] < prompt_seconds("emergency")
    for call, reason, language, prompt in (
        (yue_help, "emergency", "yue", "hotline/zh/emergency"),  # no yue recording of it
        (yue_asks, "operator", "yue", "hotline/yue/to_operator"),
        (en_asks, "operator", "zh", "hotline/zh/to_operator"),  # en is not recorded: zh
    ):
        assert reassured_in_queue(call) == prompt.rsplit("/", 1)[-1]
        assert call["variables"]["HOTLINE_LANGUAGE"] == language
        assert call["queue"]["musicclass"] == f"hotline-{reason}-{language}"
        assert call["heard"][-1][1] == prompt
    # an explanation still comes first, then the same reassurance as any ordinary route
    assert unknown["queue"]["musicclass"] == "hotline-operator-zh"
    assert [name for _t, name, _d in unknown["heard"]] == [
        "hotline/zh/unknown_caller", "hotline/zh/to_operator"]


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
