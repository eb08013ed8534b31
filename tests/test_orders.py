"""Work orders and call records on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dispatch.calls import record_call
from dispatch.db import async_sessionmaker_for, make_sync_engine
from dispatch.models import Call, Elder, OrderEvent, WorkOrder
from dispatch.orders import (
    PRIORITY,
    ServiceType,
    add_order_event,
    create_order,
    find_order,
    is_valid_order_no,
    order_no_for,
)

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _elder(session: AsyncSession, name: str = "张秀英") -> int:
    elder = Elder(name=name, created_at=AT)
    session.add(elder)
    await session.flush()
    elder_id = elder.id
    await session.commit()
    return elder_id


# -- order numbers (pure) ----------------------------------------------------------------

def test_order_numbers_are_unique_eight_digits_with_check_digit() -> None:
    numbers = [order_no_for(i) for i in range(1, 200_001)]
    assert len(set(numbers)) == len(numbers)
    assert all(len(n) == 8 and n[0] != "0" and is_valid_order_no(n) for n in numbers)
    assert order_no_for(9_000_000) == "100000006"  # past nine million: longer, still unique
    assert is_valid_order_no(order_no_for(123_456_789))


def test_check_digit_catches_typos_and_swaps() -> None:
    number = order_no_for(4242)
    for i in range(len(number)):
        for digit in "0123456789":
            if digit != number[i]:
                assert not is_valid_order_no(number[:i] + digit + number[i + 1:])
    for i in range(len(number) - 1):
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2:]
            assert not is_valid_order_no(swapped)
    for bad in ("", "1234567", "abcdefgh", "１２３４５６７８", "12345678\n"):
        assert not is_valid_order_no(bad)


def test_order_ids_must_be_positive() -> None:
    with pytest.raises(ValueError):
        order_no_for(0)


def test_emergency_is_most_urgent() -> None:
    assert PRIORITY[ServiceType.EMERGENCY] == min(PRIORITY.values())
    assert set(PRIORITY) == set(ServiceType)


# -- create_order ------------------------------------------------------------------------

async def test_create_order_commits_order_and_created_event(
    db_session: AsyncSession, migrated_db_url: str
) -> None:
    elder_id = await _elder(db_session)
    order = await create_order(db_session, elder_id=elder_id, service=ServiceType.MEAL,
                               source="phone", call_uniqueid="1700000000.7",
                               requested_by="elder", at=AT)
    assert order.order_no == order_no_for(order.id)
    assert (order.service, order.priority, order.status) == ("meal", 2, "new")
    # visible to another connection: it was committed before returning
    engine = make_sync_engine(migrated_db_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(WorkOrder.order_no, WorkOrder.created_at)).one()
            events = conn.execute(select(OrderEvent.kind, OrderEvent.at, OrderEvent.detail)).all()
    finally:
        engine.dispose()
    assert row == (order.order_no, AT)
    assert events == [("created", AT, {"service": "meal", "source": "phone",
                                       "requested_by": "elder"})]
    assert (await find_order(db_session, order.order_no)).id == order.id
    assert await find_order(db_session, "00000000") is None


async def test_order_fields_readable_with_expiring_sessions(db_engine: AsyncEngine) -> None:
    async with async_sessionmaker(db_engine, expire_on_commit=True)() as session:
        elder_id = await _elder(session)
        order = await create_order(session, elder_id=elder_id, service="health",
                                   source="handset", call_uniqueid=None, requested_by=None,
                                   at=AT)
        assert order.order_no and order.service == ServiceType.HEALTH and order.priority == 1


async def test_create_order_for_missing_elder_fails_and_rolls_back(
    db_session: AsyncSession,
) -> None:
    with pytest.raises(IntegrityError):
        await create_order(db_session, elder_id=999_999, service=ServiceType.MEAL,
                           source="phone", call_uniqueid=None, requested_by=None, at=AT)
    elder_id = await _elder(db_session)  # the session is usable again
    order = await create_order(db_session, elder_id=elder_id, service=ServiceType.EMERGENCY,
                               source="handset", call_uniqueid=None, requested_by=None, at=AT)
    assert order.priority == 0
    assert await db_session.scalar(select(func.count()).select_from(WorkOrder)) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("service", "massage"), ("source", "fax"), ("requested_by", "x" * 65)],
)
async def test_create_order_validates_before_writing(
    db_session: AsyncSession, field: str, value: str
) -> None:
    elder_id = await _elder(db_session)
    kwargs = {"elder_id": elder_id, "service": "meal", "source": "phone",
              "call_uniqueid": None, "requested_by": None, "at": AT, field: value}
    with pytest.raises(ValueError):
        await create_order(db_session, **kwargs)  # type: ignore[arg-type]
    assert await db_session.scalar(select(func.count()).select_from(WorkOrder)) == 0


async def test_concurrent_orders_get_unique_numbers(db_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker_for(db_engine)
    async with sessions() as session:
        elder_id = await _elder(session)

    async def one(i: int) -> str:
        async with sessions() as session:
            order = await create_order(session, elder_id=elder_id,
                                       service=list(ServiceType)[i % 4], source="phone",
                                       call_uniqueid=f"1700000000.{i}", requested_by="elder",
                                       at=AT + timedelta(seconds=i))
            return order.order_no or ""

    numbers = await asyncio.gather(*(one(i) for i in range(50)))
    assert len(set(numbers)) == 50 and all(is_valid_order_no(n) for n in numbers)
    async with sessions() as session:
        stored = set(await session.scalars(select(WorkOrder.order_no)))
        events = await session.scalar(select(func.count()).select_from(OrderEvent))
    assert stored == set(numbers) and events == 50


async def test_add_order_event_appends_to_timeline(db_session: AsyncSession) -> None:
    elder_id = await _elder(db_session)
    order = await create_order(db_session, elder_id=elder_id, service=ServiceType.HOUSEKEEPING,
                               source="operator", call_uniqueid=None, requested_by="op1",
                               at=AT)
    await add_order_event(db_session, order.id, "dispatched", AT + timedelta(minutes=1),
                          {"vendor_id": 7, "note": "优先派单"})
    await add_order_event(db_session, order.id, "accepted", AT + timedelta(minutes=2))
    rows = (await db_session.execute(
        select(OrderEvent.kind, OrderEvent.detail).where(OrderEvent.order_id == order.id)
        .order_by(OrderEvent.id)
    )).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [
        ("created", {"service": "housekeeping", "source": "operator", "requested_by": "op1"}),
        ("dispatched", {"vendor_id": 7, "note": "优先派单"}),
        ("accepted", None),
    ]
    with pytest.raises(IntegrityError):
        await add_order_event(db_session, 424242, "accepted", AT)


# -- call records ------------------------------------------------------------------------

async def test_call_record_links_its_order(db_session: AsyncSession) -> None:
    elder_id = await _elder(db_session)
    order = await create_order(db_session, elder_id=elder_id, service=ServiceType.MEAL,
                               source="phone", call_uniqueid="1700000001.11",
                               requested_by="elder", at=AT + timedelta(seconds=20))
    await record_call(
        db_session, uniqueid="1700000001.11", linkedid="1700000001.11",
        channel="PJSIP/trunk-0000000b", direction="inbound", caller_number="+8613800138000",
        identity_status="elder", elder_id=elder_id, started_at=AT,
        ended_at=AT + timedelta(seconds=40), disposition="order", reason=None,
        order_id=order.id, answered_at=AT + timedelta(seconds=1),
        order_announced_at=AT + timedelta(seconds=25),
    )
    db_session.expunge_all()
    call = await db_session.scalar(select(Call))
    assert call is not None
    assert (call.disposition, call.reason, call.order_id) == ("order", None, order.id)
    assert call.order_announced_at - call.answered_at == timedelta(seconds=24)
    assert call.ended_at == AT + timedelta(seconds=40)


async def test_an_announced_order_commits_its_outbox_row_with_it_and_engines_number_apart(
        migrated_db_url: str) -> None:
    """Two engine processes' pools creating announced orders at once: each order is stored
    with its "created" event and the outbox row of its event, whose order number is the
    order's, and no number is given twice (on PostgreSQL each engine numbers from ids it
    reserved ahead)."""
    from dispatch.console_events import OrderCreated
    from dispatch.db import make_async_engine
    from dispatch.models import OutboxEntry
    from dispatch.orders import create_announced_order
    from dispatch.regions import Place

    engines = [make_async_engine(migrated_db_url, pool_size=3) for _ in range(2)]
    try:
        async with async_sessionmaker_for(engines[0])() as session:
            elder_id = await _elder(session)

        async def one(i: int) -> tuple[WorkOrder, int, str]:
            async with async_sessionmaker_for(engines[i % 2])() as session:
                order, announced = await create_announced_order(
                    session, elder_id=elder_id, service=ServiceType.MEAL, source="phone",
                    call_uniqueid=f"1700000000.{i}", requested_by="elder", at=AT,
                    event_of=lambda number: OrderCreated(
                        order_no=number, service="meal", elder_id=elder_id, source="phone",
                        uniqueid=f"1700000000.{i}", place=Place(None, None, None)))
                assert isinstance(announced.event, OrderCreated)
                return order, announced.outbox_id, announced.event.order_no

        made = await asyncio.gather(*(one(i) for i in range(40)))
        async with async_sessionmaker_for(engines[0])() as session:
            stored = {o.id: o.order_no for o in await session.scalars(select(WorkOrder))}
            rows = {row.id: row.payload for row in await session.scalars(select(OutboxEntry))}
            created = set(await session.scalars(
                select(OrderEvent.order_id).where(OrderEvent.kind == "created")))
    finally:
        for engine in engines:
            await engine.dispose()
    assert len(stored) == 40 and len(set(stored.values())) == 40
    for order, outbox_id, announced_no in made:
        assert stored[order.id] == order.order_no == announced_no == order_no_for(order.id)
        assert rows[outbox_id]["order_no"] == order.order_no
    assert created == set(stored)
