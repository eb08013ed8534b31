"""Wire-level: orders offered to vendors by phone (AMI Originate, FastAGI offer), every outcome.

The engine dials through the simulator's AMI; vendors' phones in the simulator answer, press
keys, are busy, do not answer, fail, or hang up mid-offer. Everything the engine decided is
read back from the database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from dispatch.balances import vendor_month
from dispatch.charging import add_tariff, uncharged_orders
from dispatch.db import make_sync_engine
from dispatch.ledger import AccountKey, balance, month_of
from dispatch.models import (
    AccountKind,
    Complaint,
    Elder,
    LedgerTransaction,
    OrderEvent,
    OutboundCall,
    ServiceType,
    SubsidyCategory,
    VendorPhone,
    WorkOrder,
)
from dispatch.orders import create_order
from dispatch.phones import national
from dispatch.quality import callback_number
from dispatch.stats import most_at_once
from ivr.flows.balances import vendor_month_words
from tests.callstack import CallStack, open_stack, until
from tests.dispatch_world import RankedVendor, attempts, order_row, rank_vendors, timeline
from tests.hours_ahead import hours_far_from_now
from tests.sim_phones import answers_and_presses

FAST_RETRY = {"declined": {"tries": 1},
              "no_key": {"tries": 1},
              "busy": {"tries": 2, "backoff_s": 20},
              "no_answer": {"tries": 1},
              "rejected": {"tries": 1},
              "hangup": {"tries": 1},
              "congestion": {"tries": 2, "backoff_s": 20},
              "failed": {"tries": 1},
              "lost": {"tries": 1}}
ACCEPT = answers_and_presses(("1", 3.0))
DECLINE = answers_and_presses(("2", 3.0))


def dispatch_overrides(**dispatch: Any) -> dict[str, Any]:
    return {"dial": {"ring_timeout_s": 20.0},
            "dispatch": {"retry": FAST_RETRY, "reconcile_s": 0.5, "rank_refresh_s": 1e9,
                         **dispatch}}


async def stack_with_vendors(tmp_path: Path, kind: str = "embedded", **dispatch: Any
                             ) -> AsyncIterator[tuple[CallStack, list[RankedVendor]]]:
    async for stack in open_stack(kind, tmp_path, elders=200, ami=True,
                                  engine_overrides=dispatch_overrides(**dispatch)):
        yield stack, rank_vendors(stack.db_url)


async def new_order(stack: CallStack, service: ServiceType = ServiceType.MEAL) -> Any:
    """An order committed as the inbound flow commits it, then handed to the dispatcher."""
    assert stack.engine is not None and stack.engine.context is not None
    ctx = stack.engine.context
    async with ctx.sessions() as session:
        elder_id = await session.scalar(select(Elder.id).order_by(Elder.id).limit(1))
    async with ctx.writing() as session:
        order = await create_order(session, elder_id=elder_id, service=service, source="phone",
                                   call_uniqueid=None, requested_by="elder", at=ctx.now())
    assert ctx.dispatcher is not None
    ctx.dispatcher.order_created(order.id)
    return order


async def settled(stack: CallStack, order_id: int, done: Any, timeout_s: float = 60.0
                  ) -> list[Any]:
    """The order's offers, once ``done(offers)`` holds."""
    return await stack.poll(
        select(OutboundCall.vendor_id, OutboundCall.outcome, OutboundCall.tries,
               OutboundCall.state, OutboundCall.reason_code)
        .where(OutboundCall.order_id == order_id, OutboundCall.purpose == "vendor_offer")
        .order_by(OutboundCall.seq),
        done, timeout_s)


def all_settled(count: int) -> Any:
    return lambda rows: len(rows) == count and all(row.outcome for row in rows)


def outcomes(rows: list[Any]) -> list[tuple[int, str | None]]:
    return [(row.vendor_id, row.outcome) for row in rows]


@pytest.mark.parametrize("kind", ["embedded", "servers"])
async def test_the_first_vendor_accepts(tmp_path: Path, kind: str) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path, kind):
        await stack.sim.request("phones", phones={vendors[0].phone: ACCEPT})
        order = await new_order(stack)
        rows = await settled(stack, order.id, lambda r: any(x.outcome for x in r))
        assert outcomes(rows) == [(vendors[0].id, "accepted")]
        row = order_row(stack.db_url, order.order_no)
        assert row.status == "accepted" and row.vendor_id == vendors[0].id
        assert row.accepted_at is not None and row.arrive_deadline is not None
        kinds = [kind for kind, _ in timeline(stack.db_url, order.id)]
        assert kinds[:3] == ["created", "offer_scheduled", "accepted"]


async def test_nine_repeats_the_offer_before_the_vendor_accepts(tmp_path: Path) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path):
        await stack.sim.request("phones", phones={vendors[0].phone: {
            "answer": "answer", "ring_s": 2.0,
            "script": [{"press": "9", "delay": 45.0}, {"press": "1", "delay": 45.0}],
            "hangup_after": 200.0}})
        order = await new_order(stack)
        rows = await settled(stack, order.id, lambda r: any(x.outcome for x in r))
        assert outcomes(rows) == [(vendors[0].id, "accepted")]
        await stack.poll(select(OutboundCall.hung_up_at).where(  # the call, played to its end
            OutboundCall.order_id == order.id), lambda r: r and r[0].hung_up_at, 60.0)
        [call] = (await stack.sim.request("originated"))["originated"]
        assert call["variables"]["HOTLINE_ATTEMPT_ID"] == str(
            attempts(stack.db_url, order.id)[0].id)
        heard = [path.rsplit("/", 1)[-1] for path in call["heard"]]
        offer = ["offer_intro", "service_meal", "offer_within", "offer_minutes", "offer_keys"]
        assert [name for name in heard if name in offer] == offer * 2  # heard in full, twice
        assert "offer_accepted" in heard


async def test_a_decline_moves_to_the_next_vendor(tmp_path: Path) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path):
        await stack.sim.request("phones", phones={vendors[0].phone: DECLINE,
                                                  vendors[1].phone: ACCEPT})
        order = await new_order(stack)
        rows = await settled(stack, order.id, lambda r: any(x.outcome == "accepted" for x in r))
        assert outcomes(rows) == [(vendors[0].id, "declined"), (vendors[1].id, "accepted")]
        assert order_row(stack.db_url, order.order_no).vendor_id == vendors[1].id


async def test_busy_is_retried_with_backoff_then_the_next_vendor(tmp_path: Path) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path):
        await stack.sim.request("phones", phones={vendors[0].phone: {"answer": "busy"},
                                                  vendors[1].phone: ACCEPT})
        order = await new_order(stack)
        rows = await settled(stack, order.id, lambda r: any(x.outcome == "accepted" for x in r))
        assert outcomes(rows) == [(vendors[0].id, "busy"), (vendors[0].id, "busy"),
                                  (vendors[1].id, "accepted")]
        assert [row.tries for row in rows] == [1, 2, 1]
        assert rows[0].reason_code == 5
        offers = attempts(stack.db_url, order.id)
        gap = (offers[1].due_at - offers[0].finished_at).total_seconds()
        assert 20 * 0.8 - 1 <= gap <= 20 * 1.2 + 1  # the backoff, with its jitter


async def test_a_malformed_vendor_number_ends_its_attempt_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path):
        engine = make_sync_engine(stack.db_url)
        try:
            with engine.begin() as conn:
                conn.execute(update(VendorPhone).where(VendorPhone.vendor_id == vendors[0].id)
                             .values(number_e164="1234&Local/evil"))
        finally:
            engine.dispose()
        await stack.sim.request("phones", phones={vendors[1].phone: ACCEPT})
        with caplog.at_level(logging.ERROR, logger="ivr.dispatcher"):
            order = await new_order(stack)
            rows = await settled(stack, order.id,
                                 lambda r: any(x.outcome == "accepted" for x in r))
        assert outcomes(rows) == [(vendors[0].id, "bad_number"), (vendors[1].id, "accepted")]
        assert rows[0].state == "done"
        offers = attempts(stack.db_url, order.id)
        ended_after = offers[0].finished_at - offers[0].claimed_at
        assert ended_after.total_seconds() < 20  # before any ring timeout, let alone the sweep
        [call] = (await stack.sim.request("originated"))["originated"]
        assert call["variables"]["HOTLINE_ATTEMPT_ID"] == str(offers[1].id)
        logged = [r.getMessage() for r in caplog.records if r.name == "ivr.dispatcher"]
        assert any(f"attempt {offers[0].id} of order {order.id} not dialled" in m
                   and "evil" not in m for m in logged), logged
        kinds = [kind for kind, _ in timeline(stack.db_url, order.id)]
        assert "vendor_offer_bad_number" in kinds


@pytest.mark.parametrize(("behaviour", "outcome"), [
    ({"answer": "noanswer"}, "no_answer"),
    ({"answer": "congestion"}, "congestion"),
    ({"answer": "hangup"}, "rejected"),
    ({"answer": "answer", "ring_s": 1.0, "hangup_after": 300.0}, "no_key"),
    ({"answer": "answer", "ring_s": 1.0, "script": [{"hangup": True, "delay": 2.0}]},
     "hangup"),
])
async def test_each_unanswered_outcome_is_recorded(tmp_path: Path, behaviour: dict[str, Any],
                                                   outcome: str) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path):
        await stack.sim.request("phones", phones={vendors[0].phone: behaviour,
                                                  vendors[1].phone: ACCEPT})
        order = await new_order(stack)
        rows = await settled(stack, order.id, lambda r: any(x.outcome == "accepted" for x in r),
                             timeout_s=90.0)
        found = outcomes(rows)
        assert found[0] == (vendors[0].id, outcome)
        assert found[-1] == (vendors[1].id, "accepted")
        assert all(vendor == vendors[0].id for vendor, _ in found[:-1])


async def test_nobody_accepts_and_the_operators_get_the_order(tmp_path: Path) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path):
        await stack.sim.request("phones", phones={v.phone: DECLINE for v in vendors})
        order = await new_order(stack)
        rows = await settled(stack, order.id, all_settled(len(vendors)))
        assert [outcome for _, outcome in outcomes(rows)] == ["declined"] * len(vendors)
        assert sorted(v for v, _ in outcomes(rows)) == sorted(v.id for v in vendors)
        row = await stack.poll(select(WorkOrder.status).where(WorkOrder.id == order.id),
                               lambda r: r and r[0][0] == "escalated")
        assert row[0][0] == "escalated"
        assert ("dispatch_escalated", {"reason": "no_vendor_left"}) in timeline(stack.db_url,
                                                                               order.id)


def worker_call(worker: str, order_no: str, key: str) -> dict[str, Any]:
    return {"number": worker, "name": "", "to": "96349", "context": "from-pstn",
            "script": [{"press": f"{order_no}#", "delay": 2.0, "gap": 0.2},
                       {"press": key, "delay": 1.0}]}


def all_day() -> dict[str, str]:
    return {"callback_from": "00:00", "callback_until": "23:59"}


async def accepted_order(stack: CallStack, vendor: RankedVendor) -> Any:
    await stack.sim.request("phones", phones={vendor.phone: ACCEPT})
    order = await new_order(stack)
    await settled(stack, order.id, lambda r: any(x.outcome == "accepted" for x in r))
    return order


async def elder_phone(stack: CallStack, order: Any) -> str:
    assert stack.engine is not None and stack.engine.context is not None
    async with stack.engine.context.sessions() as session:
        number = await callback_number(session, order.elder_id)
    assert number is not None
    return national(number)


async def test_a_worker_reports_arrival_then_completion_and_the_elder_rates(
        tmp_path: Path) -> None:
    # the callback is planned when the dispatcher hears of the completion, due the delay
    # after it: 180 engine seconds (3 s of test time) leave room for that under load
    async for stack, vendors in stack_with_vendors(tmp_path, callback_delay_s=180.0,
                                                   **all_day()):
        order = await accepted_order(stack, vendors[0])
        await stack.sim.request("phones", phones={
            await elder_phone(stack, order): answers_and_presses(("4", 2.0))})
        arrived = await stack.sim.call(worker_call(vendors[0].worker, order.order_no, "1"))
        assert "worker_arrived" in [e[1].rsplit("/", 1)[-1] for e in arrived["heard"]]
        row = order_row(stack.db_url, order.order_no)
        assert row.status == "in_service" and row.arrived_at is not None
        await stack.sim.call(worker_call(vendors[0].worker, order.order_no, "2"))
        row = order_row(stack.db_url, order.order_no)
        assert row.status == "completed" and row.worker_id is not None
        rated = await stack.poll(select(WorkOrder.rating).where(WorkOrder.id == order.id),
                                 lambda r: r and r[0][0] is not None)
        assert rated[0][0] == 4
        callbacks = attempts(stack.db_url, order.id, "quality_callback")
        assert [c.outcome for c in callbacks] == ["rated"]
        waited = (callbacks[0].due_at - row.completed_at).total_seconds()
        assert waited == pytest.approx(180.0, abs=1.0)


async def test_strangers_and_wrong_order_numbers_change_nothing(tmp_path: Path) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path):
        order = await accepted_order(stack, vendors[0])
        stranger = await stack.sim.call(worker_call("13800000000", order.order_no, "1"))
        assert "worker_unknown" in [e[1].rsplit("/", 1)[-1] for e in stranger["heard"]]
        other_vendor = await stack.sim.call(worker_call(vendors[1].worker, order.order_no, "1"))
        assert "worker_bad_order" in [e[1].rsplit("/", 1)[-1] for e in other_vendor["heard"]]
        assert order_row(stack.db_url, order.order_no).status == "accepted"


async def test_a_poor_rating_opens_a_complaint(tmp_path: Path) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path, callback_delay_s=0.0,
                                                   **all_day()):
        order = await accepted_order(stack, vendors[0])
        await stack.sim.request("phones", phones={
            await elder_phone(stack, order): answers_and_presses(("1", 2.0))})
        await stack.sim.call(worker_call(vendors[0].worker, order.order_no, "2"))
        complaints = await stack.poll(
            select(Complaint.rating, Complaint.vendor_id).where(Complaint.order_id == order.id),
            bool)
        assert complaints == [(1, vendors[0].id)]
        assert "complaint_opened" in [k for k, _ in timeline(stack.db_url, order.id)]


async def test_an_elder_who_does_not_answer_is_tried_three_times_then_left(
        tmp_path: Path) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path, callback_delay_s=0.0,
                                                   callback_retry_s=20.0, **all_day()):
        order = await accepted_order(stack, vendors[0])
        await stack.sim.request("phones", phones={
            await elder_phone(stack, order): {"answer": "noanswer"}})
        await stack.sim.call(worker_call(vendors[0].worker, order.order_no, "2"))
        rows = await stack.poll(
            select(OutboundCall.outcome).where(OutboundCall.order_id == order.id,
                                               OutboundCall.purpose == "quality_callback"),
            lambda r: len(r) == 3 and all(x[0] for x in r), timeout_s=90.0)
        assert [r[0] for r in rows] == ["no_answer"] * 3
        events = await stack.poll(
            select(OrderEvent.kind).where(OrderEvent.order_id == order.id),
            lambda r: ("callback_unreached",) in r)
        assert ("callback_unreached",) in events
        assert order_row(stack.db_url, order.order_no).rating is None


async def test_no_callback_at_night(tmp_path: Path) -> None:
    opens, closes = hours_far_from_now()
    async for stack, vendors in stack_with_vendors(tmp_path, callback_delay_s=0.0,
                                                   callback_from=opens, callback_until=closes):
        order = await accepted_order(stack, vendors[0])
        await stack.sim.call(worker_call(vendors[0].worker, order.order_no, "2"))
        rows = await stack.poll(
            select(OutboundCall.state, OutboundCall.due_at)
            .where(OutboundCall.order_id == order.id,
                   OutboundCall.purpose == "quality_callback"), bool)
        # two whole sweeps after the callback was planned: it must still be waiting
        assert stack.engine is not None and stack.engine.dispatcher is not None
        dispatcher = stack.engine.dispatcher
        swept = dispatcher.sweeps + 2
        await until(lambda d=dispatcher, n=swept: d.sweeps >= n)
        state, due_at = (await stack.poll(
            select(OutboundCall.state, OutboundCall.due_at)
            .where(OutboundCall.order_id == order.id,
                   OutboundCall.purpose == "quality_callback"), bool))[0]
        assert len(rows) == 1 and state == "scheduled"
        local_due = due_at.astimezone(ZoneInfo("Asia/Shanghai"))
        assert f"{local_due:%H:%M}" == opens


async def test_overdue_acceptance_arrival_and_completion_raise_alerts(tmp_path: Path) -> None:
    async for stack, vendors in stack_with_vendors(
            tmp_path, accept_warn_s=20.0, arrival_window_s=20.0, max_service_s=20.0):
        await stack.sim.request("phones", phones={
            vendors[0].phone: {"answer": "noanswer"}, vendors[1].phone: {"answer": "noanswer"},
            vendors[2].phone: ACCEPT})
        slow = await new_order(stack)
        await settled(stack, slow.id, lambda r: any(x.outcome == "accepted" for x in r),
                      timeout_s=90.0)
        kinds = [k for k, _ in timeline(stack.db_url, slow.id)]
        assert "late_acceptance" in kinds
        late = await stack.poll(select(OrderEvent.kind).where(OrderEvent.order_id == slow.id),
                                lambda r: ("late_arrival",) in r)
        assert ("late_arrival",) in late
        await stack.sim.call(worker_call(vendors[2].worker, slow.order_no, "1"))
        unconfirmed = await stack.poll(
            select(OrderEvent.kind).where(OrderEvent.order_id == slow.id),
            lambda r: ("completion_unconfirmed",) in r)
        assert ("completion_unconfirmed",) in unconfirmed
        kinds = [k for k, _ in timeline(stack.db_url, slow.id)]
        for alert in ("late_acceptance", "late_arrival", "completion_unconfirmed"):
            assert kinds.count(alert) == 1


async def test_a_failing_trunk_records_failed_and_escalates(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=200, ami=True,
                                  engine_overrides={**dispatch_overrides(),
                                                    "dial": {"vendor": "Bogus/{number}"}}):
        vendors = rank_vendors(stack.db_url)
        order = await new_order(stack)
        rows = await settled(stack, order.id, all_settled(len(vendors)))
        assert [outcome for _, outcome in outcomes(rows)] == ["failed"] * len(vendors)
        assert all(row.reason_code == 0 for row in rows)
        escalated = await stack.poll(select(WorkOrder.status).where(WorkOrder.id == order.id),
                                     lambda r: r and r[0][0] == "escalated")
        assert escalated[0][0] == "escalated"


async def test_the_acceptance_deadline_escalates(tmp_path: Path) -> None:
    async for stack, vendors in stack_with_vendors(tmp_path, accept_within_s=50.0):
        await stack.sim.request("phones", phones={v.phone: {"answer": "noanswer"}
                                                  for v in vendors})
        order = await new_order(stack)
        row = await stack.poll(select(WorkOrder.status).where(WorkOrder.id == order.id),
                               lambda r: r and r[0][0] == "escalated", timeout_s=60.0)
        assert row[0][0] == "escalated"
        events = timeline(stack.db_url, order.id)
        assert ("dispatch_escalated", {"reason": "accept_deadline"}) in events
        offers = attempts(stack.db_url, order.id)
        assert 1 <= len(offers) < len(vendors)  # the deadline came before the vendors ran out
        assert all(o.state in ("done", "cancelled") for o in offers)


async def accepted_spans(stack: CallStack, count: int) -> list[Any]:
    """Place ``count`` orders; once all are accepted, each attempt's vendor and time on line."""
    orders = [await new_order(stack) for _ in range(count)]
    rows = await stack.poll(
        select(OutboundCall.vendor_id, OutboundCall.claimed_at, OutboundCall.finished_at,
               OutboundCall.outcome)
        .where(OutboundCall.order_id.in_([o.id for o in orders])),
        lambda r: sum(1 for x in r if x.outcome == "accepted") == count, timeout_s=90.0)
    assert sum(1 for x in rows if x.outcome == "accepted") == count
    return rows


async def test_outbound_calls_stay_within_trunk_and_vendor_caps(tmp_path: Path) -> None:
    slow_accept = answers_and_presses(("1", 4.0), ring_s=6.0)
    async for stack, vendors in stack_with_vendors(tmp_path, trunk_channels=2,
                                                   vendor_channels=10):
        await stack.sim.request("phones", phones={v.phone: slow_accept for v in vendors})
        trunk_bound = await accepted_spans(stack, 5)
        assert most_at_once([(x.claimed_at, x.finished_at) for x in trunk_bound]) == 2
        # the same engine, caps changed: one line per vendor, a wide trunk
        stack.settings.dispatch.trunk_channels, stack.settings.dispatch.vendor_channels = 10, 1
        vendor_bound = await accepted_spans(stack, 4)
        for vendor in {x.vendor_id for x in vendor_bound}:
            mine = [(x.claimed_at, x.finished_at) for x in vendor_bound if x.vendor_id == vendor]
            assert most_at_once(mine) == 1
        assert {x.vendor_id for x in vendor_bound} == {vendors[0].id}


async def test_a_completed_order_is_charged_once_by_the_engine(tmp_path: Path) -> None:
    overrides = dispatch_overrides(**all_day())
    overrides["money"] = {"charge": True, "categories": {
        category.value: {"voucher_yuan": "50", "share": "0.8"} for category in SubsidyCategory}}
    async for stack in open_stack("embedded", tmp_path, elders=200, ami=True,
                                  engine_overrides=overrides):
        vendors = rank_vendors(stack.db_url)
        assert stack.engine is not None and stack.engine.context is not None
        async with stack.engine.context.sessions() as session:
            await add_tariff(session, vendors[0].id, ServiceType.MEAL, 3000, date(2000, 1, 1),
                             None)
        order = await accepted_order(stack, vendors[0])
        await stack.sim.call(worker_call(vendors[0].worker, order.order_no, "2"))
        charged = await stack.poll(
            select(LedgerTransaction.business_key).where(LedgerTransaction.order_id == order.id),
            bool)
        assert charged == [(f"charge:order:{order.id}",)]
        async with stack.engine.context.sessions() as session:
            assert await balance(session, AccountKey(AccountKind.VENDOR_PAYABLE,
                                                     vendors[0].id)) == 3000
            # the sweep finds nothing more to charge
            assert await uncharged_orders(session, order.created_at) == []
        # and it credited this month's vouchers to every elder of a category with them
        elders = stack.rows(select(func.count()).select_from(Elder))[0][0]
        credited = await stack.poll(
            select(func.count()).select_from(LedgerTransaction)
            .where(LedgerTransaction.kind == "voucher"),
            lambda rows, n=elders: rows[0][0] == n)
        assert credited[0][0] == elders
        # the vendor's worker hears the month so far: *# instead of an order number
        heard = await stack.sim.call({
            "number": vendors[0].worker, "name": "", "to": "96349", "context": "from-pstn",
            "script": [{"press": "*#", "delay": 1.0, "gap": 0.2}, {"silent": True}]})
        said = [path.rsplit("/", 1)[-1] for _at, path, *_ in heard["heard"]]
        start = said.index("vendor_month_orders")
        context = stack.engine.context
        month = month_of(context.now(), ZoneInfo(context.settings.dispatch.timezone))
        async with context.sessions() as session:
            figures = await vendor_month(session, vendors[0].id, month, 0)
        words = vendor_month_words(figures)
        assert said[start:start + len(words)] == words
        assert said[start + len(words)] == "worker_enter_order"  # then the order number again
        charge_month = stack.rows(select(LedgerTransaction.month).where(
            LedgerTransaction.order_id == order.id))[0][0]
        if charge_month == month:  # (the engine's clock may have run into the next month)
            # 一单，应结算金额三十元
            assert words == ["vendor_month_orders", "digit_1", "vendor_month_orders_unit",
                             "vendor_month_amount", "digit_3", "ten", "yuan"]
