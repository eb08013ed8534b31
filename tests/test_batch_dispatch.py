"""A burst of orders planned and claimed in batches, on SQLite and PostgreSQL: each order gets
the offer it would get alone, in a number of queries that does not grow with the burst; the
channel caps hold inside a batch; two engines planning or claiming the same burst at once
offer and dial each order once."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from dispatch import outbound
from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade
from dispatch.models import (
    CallPurpose,
    OrderEvent,
    OrderStatus,
    OutboundCall,
    OutboundState,
    ServiceType,
    WorkOrder,
)
from dispatch.offers import NextStep, OfferPolicy, plan_offers
from dispatch.selection import SelectionPolicy, vendor_candidates
from tests.vendor_world import QILIHE, add_elder, add_offer, add_order, add_vendors, vendor_row

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # stored times only: no clock is read
LONGEST = timedelta(hours=2)
POLICY = OfferPolicy(accept_within_s=600, arrival_window_s=3600, retry={}, jitter=0.0,
                     selection=SelectionPolicy(), tz=TZ)


async def _burst(session: AsyncSession, meals: int, chores: int) -> dict[str, list[int]]:
    """Vendors for meals (Chengguan) and housekeeping (Qilihe), none for health; orders of
    each kind, and the orders a plan must leave alone or escalate."""
    await add_vendors(session, [vendor_row(f"餐饮{i}", rank=70.0 + i) for i in range(3)])
    await add_vendors(session, [vendor_row(f"家政{i}", rank=60.0 + i) for i in range(2)],
                      services=(ServiceType.HOUSEKEEPING,), counties=(QILIHE,))
    here = await add_elder(session, created=NOW)
    there = await add_elder(session, county=QILIHE, created=NOW)
    orders: dict[str, list[int]] = {"meal": [], "chores": []}
    for _ in range(meals):
        orders["meal"].append((await add_order(session, here, NOW)).id)
    for _ in range(chores):
        orders["chores"].append((await add_order(
            session, there, NOW, service=ServiceType.HOUSEKEEPING)).id)
    orders["no vendor"] = [(await add_order(session, here, NOW,
                                            service=ServiceType.HEALTH)).id]
    orders["late"] = [(await add_order(session, here, NOW - timedelta(hours=2))).id]
    orders["left alone"] = [
        (await add_order(session, here, NOW, service=ServiceType.EMERGENCY)).id,
        (await add_offer(session, here, 1, [None], finished=NOW)).id,  # one scheduled
        424242]  # no such order
    return orders


async def _plan(session: AsyncSession, order_ids: list[int]) -> tuple[dict[int, NextStep], int]:
    """``plan_offers`` and the number of statements it ran."""
    engine = session.bind.sync_engine  # type: ignore[union-attr]
    statements: list[str] = []

    def count(*_args: object) -> None:
        statements.append("")

    event.listen(engine, "before_cursor_execute", count)
    try:
        steps = await plan_offers(session, order_ids, NOW, POLICY, random.Random(1))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return steps, len(statements)


async def test_a_burst_is_planned_as_each_order_alone_in_few_queries(
        db_session: AsyncSession) -> None:
    orders = await _burst(db_session, meals=40, chores=20)
    expected = {order_id: (await vendor_candidates(
        db_session, order_id=order_id, at=NOW, tz=TZ, policy=POLICY.selection))[0]
        for order_id in orders["meal"] + orders["chores"]}
    small, small_queries = await _plan(db_session, orders["meal"][:3] + orders["chores"][:2])
    rest = [i for kind in orders.values() for i in kind if i not in small]
    steps, queries = await _plan(db_session, rest)
    steps |= small
    assert queries == small_queries + 3  # escalations: their update, cancels and events
    assert small_queries <= 8

    offered = {row.order_id: row for row in await db_session.scalars(
        select(OutboundCall).where(OutboundCall.purpose == CallPurpose.VENDOR_OFFER,
                                   OutboundCall.order_id.in_(list(expected))))}
    for order_id, best in expected.items():
        row = offered[order_id]
        assert (row.vendor_id, row.number_e164, row.seq, row.tries, row.state,
                row.due_at) == (best.vendor_id, best.phone_e164, 1, 1,
                                OutboundState.SCHEDULED, NOW)
        assert steps[order_id] == NextStep(attempt_id=row.id, due_at=NOW)
    statuses = dict((await db_session.execute(
        select(WorkOrder.id, WorkOrder.status).where(WorkOrder.id.in_(steps)))).all())
    assert {statuses[i] for i in expected} == {OrderStatus.DISPATCHING}
    deadlines = set(await db_session.scalars(
        select(WorkOrder.accept_deadline).where(WorkOrder.id.in_(list(expected)))))
    assert deadlines == {NOW + timedelta(seconds=POLICY.accept_within_s)}
    assert steps[orders["no vendor"][0]] == NextStep(escalated="no_vendor_available")
    assert steps[orders["late"][0]] == NextStep(escalated="accept_deadline")
    assert statuses[orders["late"][0]] == OrderStatus.ESCALATED
    assert all(steps[i] == NextStep() for i in orders["left alone"])
    events = list(await db_session.execute(
        select(OrderEvent.order_id, OrderEvent.kind).where(OrderEvent.order_id.in_(steps),
                                                          OrderEvent.kind != "created")))
    assert sorted(events) == sorted(
        [(i, "offer_scheduled") for i in expected]
        + [(orders[kind][0], "dispatch_escalated") for kind in ("no vendor", "late")])


async def test_two_engines_planning_one_burst_offer_each_order_once(pg_url: str) -> None:
    upgrade(pg_url)
    engine = make_async_engine(pg_url, pool_size=4)
    try:
        sessions = async_sessionmaker_for(engine)
        async with sessions() as session:
            orders = await _burst(session, meals=60, chores=30)
        burst = orders["meal"] + orders["chores"]
        random.Random(5).shuffle(burst)

        async def plan(order_ids: list[int]) -> dict[int, NextStep]:
            async with sessions() as session:
                return await plan_offers(session, order_ids, NOW, POLICY, random.Random(2))

        first, second = await asyncio.gather(plan(burst), plan(burst[::-1]))
        async with sessions() as session:
            attempts = list(await session.execute(
                select(OutboundCall.order_id, OutboundCall.id)
                .where(OutboundCall.order_id.in_(burst))))
    finally:
        await engine.dispose()
    assert sorted(order for order, _ in attempts) == sorted(burst)  # one each
    planned = {i: s.attempt_id for i, s in (*first.items(), *second.items()) if s.attempt_id}
    assert planned == dict(attempts)
    assert not {i for i, s in first.items() if s.attempt_id} \
        & {i for i, s in second.items() if s.attempt_id}


async def _attempts(session: AsyncSession, vendors: list[int], per_vendor: int) -> list[int]:
    elder = await add_elder(session, created=NOW)
    ids = []
    for vendor_id in vendors:
        for _ in range(per_vendor):
            order = await add_order(session, elder, NOW)
            attempt_id = await outbound.schedule(
                session, purpose=CallPurpose.VENDOR_OFFER, order_id=order.id, seq=1,
                vendor_id=vendor_id, number_e164="+869310000001", tries=1, due_at=NOW)
            assert attempt_id is not None
            ids.append(attempt_id)
    return ids


async def test_a_batch_of_claims_keeps_to_the_trunk_and_vendor_caps(
        db_session: AsyncSession) -> None:
    vendors = await add_vendors(db_session, [vendor_row("甲"), vendor_row("乙")])
    a1, a2, a3, b1, b2, b3 = await _attempts(db_session, vendors, 3)
    await db_session.execute(update(OutboundCall).where(OutboundCall.id == a3)
                             .values(state=OutboundState.CANCELLED))  # its order was taken
    spare = (await _attempts(db_session, vendors[:1], 1))[0]
    priority = iter([0, 1])  # a priority call takes a line while the batch commits

    async def priority_lines() -> int:
        return next(priority)

    claims = await outbound.claim_many(
        db_session, [a1, a2, a3, b1, spare, b2, b3, 999999], engine_id="batch", at=NOW,
        caps=outbound.Caps(LONGEST, 4, 2), priority_lines=priority_lines)
    refused = {attempt_id: claim.refused for attempt_id, claim in claims.items()}
    assert refused == {a1: None, a2: None, a3: "gone", b1: None, spare: "vendor_busy",
                       b2: "trunk_full", b3: "trunk_full", 999999: "gone"}
    assert [claims[i].attempt.id for i in (a1, a2, b1)] == [a1, a2, b1]  # type: ignore[union-attr]
    states = dict((await db_session.execute(
        select(OutboundCall.id, OutboundCall.state).where(
            OutboundCall.id.in_([a1, a2, b1, spare, b2, b3])))).all())
    assert states == {a1: OutboundState.DIALING, a2: OutboundState.DIALING,
                      b1: OutboundState.DIALING, spare: OutboundState.SCHEDULED,
                      b2: OutboundState.SCHEDULED, b3: OutboundState.SCHEDULED}


async def test_two_engines_claiming_one_batch_dial_each_attempt_once(pg_url: str) -> None:
    upgrade(pg_url)
    engine: AsyncEngine = make_async_engine(pg_url, pool_size=4)
    try:
        sessions = async_sessionmaker_for(engine)
        async with sessions() as session:
            vendors = await add_vendors(session, [vendor_row(f"商家{i}") for i in range(10)])
            ids = await _attempts(session, vendors, 8)

        async def claim(engine_id: str, order: list[int]) -> set[int]:
            async with sessions() as session:
                claims = await outbound.claim_many(
                    session, order, engine_id=engine_id, at=NOW,
                    caps=outbound.Caps(LONGEST, 1000, 1000))
            return {i for i, c in claims.items() if c.attempt is not None}

        first, second = await asyncio.gather(claim("one", ids), claim("two", ids[::-1]))
        async with sessions() as session:
            owners = dict((await session.execute(
                select(OutboundCall.id, OutboundCall.claimed_by)
                .where(OutboundCall.id.in_(ids)))).all())
    finally:
        await engine.dispose()
    assert not first & second
    assert first | second == set(ids)
    assert owners == {i: "one" if i in first else "two" for i in ids}
