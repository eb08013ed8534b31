"""An engine stopped with family escalations in flight ends every task it started."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from dispatch.db import make_sync_engine
from dispatch.models import ElderPhone, ServiceType
from dispatch.orders import create_order
from dispatch.phones import national
from ivr.engine import Engine
from ivr.escalation import FAMILY_CONTEXT
from tests.callstack import CallStack, open_stack, until
from tests.test_family_escalation import handset_with_family

ROUNDS = 3


def engine_tasks(before: set[asyncio.Task[object]]) -> list[asyncio.Task[object]]:
    """Unfinished tasks running the engine's code (ivr/) started since ``before``."""
    found = []
    for task in asyncio.all_tasks() - before:
        if task.done():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and "/ivr/" in code.co_filename:
            found.append(task)
    return found


async def test_start_and_stop_with_escalations_in_flight_leaves_no_task(tmp_path: Path
                                                                        ) -> None:
    # at 5x a family phone rings for 24 s: still ringing when the engine stops
    async for stack in open_stack("embedded", tmp_path, elders=300, speed=5.0,
                                  agi_url="agi://127.0.0.1:9",  # no engine of the stack's
                                  engine_overrides={"dial": {"ring_timeout_s": 120.0}}):
        settings = stack.settings
        settings.ami.enabled, settings.ami.port = True, int(stack.sim.ami_port or 0)
        settings.ami.secret = stack.sim.ami_secret
        line, family = handset_with_family(stack.db_url, 2)
        await stack.sim.request("phones", phones={
            national(number): {"answer": "noanswer"} for number in family})
        elder_id = _elder_of(stack.db_url, line)
        for round_no in range(ROUNDS):
            before = set(asyncio.all_tasks())
            engine = Engine(settings)
            await engine.start(migrate=False)
            assert engine.context is not None and engine.escalation is not None
            async with engine.context.writing() as session:
                order = await create_order(
                    session, elder_id=elder_id, service=ServiceType.EMERGENCY,
                    source="handset", call_uniqueid=f"9.{round_no}", requested_by="elder",
                    at=engine.context.now())
            engine.escalation.start(order.id, elder_id)
            ringing = _rings(stack, order.id)
            await until(ringing, f"round {round_no}: family ringing")
            await engine.stop()
            assert engine_tasks(before) == [], f"round {round_no}: {engine_tasks(before)}"


def _elder_of(db_url: str, line: str) -> int:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(ElderPhone.elder_id)
                                .where(ElderPhone.number_e164 == line)).scalar_one()
    finally:
        engine.dispose()


def _rings(stack: CallStack, order_id: int) -> Callable[[], Awaitable[bool]]:
    """Whether the simulator has been asked to ring a family member for ``order_id``."""
    async def check() -> bool:
        log = (await stack.sim.request("originated"))["originated"]
        return any(entry["context"] == FAMILY_CONTEXT
                   and entry.get("variables", {}).get("HOTLINE_ORDER_ID") == str(order_id)
                   for entry in log)
    return check
