"""Wire-level: a handset call that FastAGI never served (no engine listening) is queued by the
dialplan alone, at priority 0 and with reason engine_FAILURE; the engine, which still sees the
PBX over AMI, adopts it: the call's emergency order (once), its screen pop and a call record
pointing to the order. An ordinary elder's call queued the same way gets no order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from dispatch.models import Call, ServiceType, WorkOrder
from dispatch.phones import national
from tests.callstack import CallStack, open_stack, until
from tests.test_emergency_retry import stream

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    async for opened in open_stack("embedded", tmp_path_factory.mktemp("adopted"), elders=60,
                                   agi_down=True, ami=True):
        yield opened


async def call(stack: CallStack, number: str) -> dict[str, Any]:
    """A call the dialplan handles alone (its FastAGI connection refused)."""
    return await stack.sim.call({"number": number, "name": "", "to": "12349",
                                 "context": "from-pstn", "script": [], "hangup_after": None})


def orders_of(stack: CallStack, uniqueid: str) -> list[tuple[int, ServiceType]]:
    return [(row.id, row.service) for row in stack.rows(
        select(WorkOrder.id, WorkOrder.service).where(WorkOrder.call_uniqueid == uniqueid))]


async def test_a_handset_call_queued_without_the_engine_gets_its_order_and_pop(
        stack: CallStack) -> None:
    result = await call(stack, national(stack.numbers["handsets"][0]))
    uniqueid = result["uniqueid"]
    assert result["variables"]["HOTLINE_REASON"] == "engine_FAILURE"
    assert result["queue"]["answered_at"] is not None  # an operator talked to the caller

    orders = await until(lambda: orders_of(stack, uniqueid), "the adopted call's order")
    assert [service for _, service in orders] == [ServiceType.EMERGENCY]
    record = await until(lambda: stack.rows(select(Call.order_id, Call.reason, Call.disposition)
                                            .where(Call.uniqueid == uniqueid)),
                         "the adopted call's record")
    assert [tuple(row) for row in record] == [(orders[0][0], "engine_FAILURE", "operator")]
    pops = await until(lambda: _pops_of(stack, uniqueid), "the adopted call's screen pop")
    assert len(pops) == 1
    assert pops[0]["reason"] == "handset_emergency" and pops[0]["priority"] == 10
    assert pops[0]["profile"]["elder_id"] is not None
    created = [event for event in await stream(stack, "order_created")
               if event["uniqueid"] == uniqueid]
    assert len(created) == 1  # announced once: the family escalation starts from it


async def test_an_ordinary_call_queued_without_the_engine_is_left_to_the_operator(
        stack: CallStack) -> None:
    handset = await call(stack, national(stack.numbers["handsets"][1]))
    result = await call(stack, stack.numbers["elders"][0])
    assert result["variables"]["HOTLINE_REASON"] == "engine_FAILURE"
    # the handset call queued before it is adopted; by then this one's event was seen too
    await until(lambda: orders_of(stack, handset["uniqueid"]), "the handset call's order")
    await until(lambda: stack.rows(select(Call.id).where(
        Call.uniqueid == handset["uniqueid"])), "the handset call's record")
    assert orders_of(stack, result["uniqueid"]) == []
    assert await _pops_of(stack, result["uniqueid"]) == []


async def _pops_of(stack: CallStack, uniqueid: str) -> list[dict[str, object]]:
    return [pop for pop in await stream(stack, "screen_pop") if pop["uniqueid"] == uniqueid]
