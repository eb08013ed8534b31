"""Wire-level: a handset call that FastAGI never served (no engine listening) is queued by the
dialplan alone, at priority 0 and with reason engine_FAILURE; the engine, which still sees the
PBX over AMI, adopts it: the call's emergency order (once), its screen pop and a call record
pointing to the order. An ordinary elder's call queued the same way gets no order. With the
AMI link cut as well, the queue listing on reconnection and the dialplan's spool at the
call's end make up for the missed event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from dispatch.models import Call, ServiceType, WorkOrder
from dispatch.phones import national
from ivr.spool_service import replay_once
from tests.callstack import OPERATORS, CallStack, open_stack, until
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


async def _queued(stack: CallStack, count: int) -> bool:
    channels = (await stack.sim.request("channels"))["channels"]
    return sum(channel["app"] == "Queue" for channel in channels) >= count


async def test_calls_queued_or_ended_while_the_ami_link_was_cut_are_not_lost(
        tmp_path: Path) -> None:
    """The engine never saw these calls' HotlineQueued events. Handset callers still waiting
    when the link comes back are adopted from the queue listing; a handset call that queued,
    was answered and ended during the cut is spooled by the dialplan and replayed into its
    order. Ordinary callers get no order either way."""
    async for stack in open_stack("embedded", tmp_path, elders=60, agi_down=True, ami=True,
                                  ami_proxy=True,  # callers wait until the operators return
                                  sim_globals={"HOTLINE_QUEUE_TIMEOUT": "36000"}):
        await _calls_during_a_cut(stack)


async def _calls_during_a_cut(stack: CallStack) -> None:
    assert stack.ami_proxy is not None and stack.engine is not None
    ctx = stack.engine.context
    assert ctx is not None
    await stack.sim.request("operators", operators=[])
    await stack.ami_proxy.cut()
    numbers = (national(stack.numbers["handsets"][2]), national(stack.numbers["elders"][3]))
    waiting = [asyncio.create_task(call(stack, number)) for number in numbers]
    await until(lambda: _queued(stack, 2), "both callers in the queue")
    assert await stream(stack, "screen_pop") == []  # no engine has heard of them

    stack.ami_proxy.restore()  # the engine reconnects and lists the queues
    adopted = await until(lambda: stack.rows(select(WorkOrder.call_uniqueid).where(
        WorkOrder.service == ServiceType.EMERGENCY)), "the waiting handset caller's order")
    await stack.sim.request("operators", operators=OPERATORS)
    waited, ordinary = await asyncio.gather(*waiting)
    assert [tuple(row) for row in adopted] == [(waited["uniqueid"],)]
    assert len(await _pops_of(stack, waited["uniqueid"])) == 1
    assert orders_of(stack, ordinary["uniqueid"]) == []
    for result in (waited, ordinary):  # ended with no engine in the call: spooled
        assert result["variables"]["HOTLINE_SPOOLED"] == "1"
        assert result["variables"]["MEMBERINTERFACE"].startswith("PJSIP/op")

    await stack.ami_proxy.cut()  # a handset call from start to end during the cut
    answered = await call(stack, national(stack.numbers["handsets"][3]))
    assert answered["queue"]["answered_at"] is not None
    stack.ami_proxy.restore()
    await replay_once(ctx)  # this pass or the engine's own, whichever came first
    assert await replay_once(ctx) == 0
    for result in (waited, answered):
        assert [service for _, service in orders_of(stack, result["uniqueid"])] == [
            ServiceType.EMERGENCY]
    assert orders_of(stack, ordinary["uniqueid"]) == []
