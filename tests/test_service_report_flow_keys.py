"""A worker's service report, against a scripted Asterisk in memory (tests/agi_memory.py): the
order number keyed wrong, then right, or never; the status key; silence; a hang-up; a caller
who is not a registered worker. No timing is involved; the same calls over real TCP with the
simulator are in test_dispatch_calls.py."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import select

from dispatch.models import OrderStatus, VendorWorker, WorkOrder
from ivr.context import EngineContext
from ivr.flows.service_report import ServiceReportFlow
from tests.agi_memory import DEAD, TIMEOUT, ScriptedAsterisk, Step, step
from tests.flow_context import open_flow_context
from tests.vendor_world import add_elder, add_order, add_vendor

pytestmark = pytest.mark.asyncio(loop_scope="module")

ENTER = "GET DATA hotline/zh/worker_enter_order 15000 12"
STATUS = "GET DATA hotline/zh/worker_status_keys 8000 1"
_workers = itertools.count(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ctx(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineContext]:
    async for opened in open_flow_context(tmp_path_factory.mktemp("service-report-flow")):
        yield opened


async def accepted_order(ctx: EngineContext) -> tuple[str, str]:
    """(the worker's phone, the order number) of an order their vendor accepted."""
    number = f"1390093{next(_workers):04d}"
    now = ctx.now()
    async with ctx.writing() as session:
        vendor_id = await add_vendor(session, "城关家政服务社")
        session.add(VendorWorker(vendor_id=vendor_id, name="李师傅", number_e164=f"+86{number}"))
        order = await add_order(session, await add_elder(session, created=now), now,
                                status=OrderStatus.ACCEPTED, vendor_id=vendor_id,
                                accepted_at=now)
    return number, order.order_no


def said(name: str) -> Step:
    return step(f'STREAM FILE hotline/zh/{name} ""', "200 result=0 endpos=8000")


async def report(ctx: EngineContext, number: str, order_no: str, script: list[Step]
                 ) -> OrderStatus:
    """One call to the service line; the order's status after it."""
    asterisk = ScriptedAsterisk([step("ANSWER", "200 result=0"), *script])
    await asterisk.serve(ServiceReportFlow(ctx), "service_report", callerid=number)
    async with ctx.sessions() as session:
        status = await session.scalar(select(WorkOrder.status)
                                      .where(WorkOrder.order_no == order_no))
    assert status is not None
    return OrderStatus(status)


async def test_the_worker_reports_arrival(ctx: EngineContext) -> None:
    number, order_no = await accepted_order(ctx)
    status = await report(ctx, number, order_no, [
        step(ENTER, f"200 result={order_no}"), step(STATUS, "200 result=1"),
        said("worker_arrived")])
    assert status is OrderStatus.IN_SERVICE


async def test_a_wrong_number_is_asked_again_then_completion_is_reported(
        ctx: EngineContext) -> None:
    number, order_no = await accepted_order(ctx)
    mistyped = order_no[:-1] + str((int(order_no[-1]) + 1) % 10)  # its check digit fails
    status = await report(ctx, number, order_no, [
        step(ENTER, f"200 result={mistyped}"), said("worker_bad_order"),
        step(ENTER, TIMEOUT), said("worker_bad_order"),
        step(ENTER, f"200 result={order_no} (timeout)"), step(STATUS, "200 result=2"),
        said("worker_completed")])
    assert status is OrderStatus.COMPLETED


async def test_three_wrong_numbers_end_the_call_and_change_nothing(ctx: EngineContext) -> None:
    number, order_no = await accepted_order(ctx)
    _, other_vendors_order = await accepted_order(ctx)
    status = await report(ctx, number, order_no, [
        step(ENTER, f"200 result={other_vendors_order}"), said("worker_bad_order"),
        step(ENTER, "200 result=12"), said("worker_bad_order"),
        step(ENTER, TIMEOUT), said("goodbye")])
    assert status is OrderStatus.ACCEPTED


async def test_silence_and_a_wrong_key_at_the_status_question_end_without_a_report(
        ctx: EngineContext) -> None:
    number, order_no = await accepted_order(ctx)
    status = await report(ctx, number, order_no, [
        step(ENTER, f"200 result={order_no}"),
        step(STATUS, TIMEOUT), said("no_input"),
        step(STATUS, "200 result=7"), said("invalid_input"),
        step(STATUS, TIMEOUT), said("goodbye")])
    assert status is OrderStatus.ACCEPTED


@pytest.mark.parametrize("reply", [("200 result=-1",), ("HANGUP", DEAD)])
async def test_a_hangup_before_the_status_key_changes_nothing(
        ctx: EngineContext, reply: tuple[str, ...]) -> None:
    number, order_no = await accepted_order(ctx)
    status = await report(ctx, number, order_no, [step(ENTER, f"200 result={order_no}"),
                                                  step(STATUS, *reply)])
    assert status is OrderStatus.ACCEPTED


async def test_a_caller_who_is_not_a_registered_worker_is_told_so(ctx: EngineContext) -> None:
    _, order_no = await accepted_order(ctx)
    status = await report(ctx, "13700000000", order_no, [said("worker_unknown")])
    assert status is OrderStatus.ACCEPTED


async def test_star_hash_reads_the_month_so_far_three_times_at_most(ctx: EngineContext) -> None:
    number, order_no = await accepted_order(ctx)
    nothing_yet = [said(name) for name in (
        "vendor_month_orders", "digit_0", "vendor_month_orders_unit",  # 零单
        "vendor_month_amount", "digit_0", "yuan")]  # 应结算金额零元
    status = await report(ctx, number, order_no, [
        *[s for _ in range(3) for s in (step(ENTER, "200 result=*"), *nothing_yet)],
        step(ENTER, "200 result=*"), said("worker_bad_order"),  # a fourth is a wrong number
        step(ENTER, f"200 result={order_no}"), step(STATUS, "200 result=1"),
        said("worker_arrived")])
    assert status is OrderStatus.IN_SERVICE
