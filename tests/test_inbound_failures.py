"""Wire-level: a dead engine, database or Redis never leaves an elder in silence."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from dispatch.db import make_sync_engine
from dispatch.models import WorkOrder
from ivr.spool_service import replay_once
from tests.callstack import open_stack
from tests.ports import closed_port
from tests.test_inbound_calls import CONFIRM_KEY_DELAY, LISTEN, MENU_KEY_DELAY, heard, press


async def test_engine_down_sends_the_call_to_the_operator_queue(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=20,
                                  agi_url=f"agi://127.0.0.1:{closed_port()}"):
        result = await stack.call("13800138000")
        assert result["variables"]["HOTLINE_REASON"] == "engine_FAILURE"  # AGISTATUS FAILURE
        assert result["queue"]["answered_at"] is not None
        assert result["variables"]["HOTLINE_SPOOLED"] == "1"  # at its end: no engine knew it


async def test_database_down_routes_to_a_human(tmp_path: Path) -> None:
    dead_db = f"postgresql://postgres@127.0.0.1:{closed_port()}/hotline"
    async for stack in open_stack("embedded", tmp_path, elders=20,
                                  engine_overrides={"database": {"url": dead_db}}):
        result = await stack.call(stack.numbers["elders"][0])
        assert result["variables"]["HOTLINE_ROUTE"] == "operator"
        assert result["variables"]["HOTLINE_REASON"] == "registry_unavailable"
        assert "system_busy" in heard(result)
        assert result["queue"]["answered_at"] is not None


async def test_redis_down_still_gives_an_order(tmp_path: Path) -> None:
    dead_redis = f"redis://127.0.0.1:{closed_port()}/0"
    async for stack in open_stack("embedded", tmp_path, elders=20,
                                  engine_overrides={"redis": {"url": dead_redis}}):
        result = await stack.call(stack.numbers["elders"][1],
                                  [LISTEN, press("1", MENU_KEY_DELAY),
                                   press("1", CONFIRM_KEY_DELAY)])
        call, order = stack.record(result["uniqueid"])
        assert call.disposition == "order" and order is not None
        assert stack.engine is not None and stack.engine.context is not None
        assert stack.engine.context.live.errors > 0


async def test_nobody_answers_and_the_spooled_call_becomes_an_emergency(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=40,
                                  sim_globals={"HOTLINE_QUEUE_TIMEOUT": "5"}):
        await stack.sim.request("operators", operators=[])
        number = stack.numbers["elders"][2]
        result = await stack.call(number, [LISTEN, press("0", MENU_KEY_DELAY)])
        assert result["variables"]["HOTLINE_SPOOLED"] == "1"
        assert stack.engine is not None and stack.engine.context is not None
        await replay_once(stack.engine.context)  # or the engine's own pass did it first
        assert await replay_once(stack.engine.context) == 0  # never twice
        orders = spool_orders(stack.db_url)
        assert [(o.service, o.requested_by, o.call_uniqueid) for o in orders] == [
            ("emergency", "spool", result["uniqueid"])
        ]


def spool_orders(db_url: str) -> list:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(WorkOrder).where(WorkOrder.requested_by == "spool")))
    finally:
        engine.dispose()
