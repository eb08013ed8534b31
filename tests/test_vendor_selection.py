"""Vendor selection for an order (优先派单), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import OrderStatus, VendorPhone, VendorStatus
from dispatch.orders import ServiceType
from dispatch.selection import (
    Candidate,
    SelectionPolicy,
    UnknownOrderError,
    is_open,
    vendor_candidates,
)
from tests.vendor_world import (
    QILIHE,
    add_elder,
    add_order,
    add_vendor,
    add_vendors,
    vendor_row,
)

TZ = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in Lanzhou (UTC+8)
POLICY = SelectionPolicy()


async def _order(session: AsyncSession, *, service: ServiceType = ServiceType.MEAL,
                 county: str | None = "620102", km: float | None = 0.0) -> int:
    elder_id = await add_elder(session, county=county, km=km, created=NOON)
    return (await add_order(session, elder_id, NOON, service=service)).id


async def _ids(session: AsyncSession, order_id: int, *, at: datetime = NOON,
               policy: SelectionPolicy = POLICY, exclude: tuple[int, ...] = ()) -> list[int]:
    found = await vendor_candidates(session, order_id=order_id, at=at, tz=TZ, policy=policy,
                                    exclude=exclude)
    return [c.vendor_id for c in found]


# -- opening hours (pure) ------------------------------------------------------------------

def test_opening_hours_day_overnight_and_24h() -> None:
    day, night = (time(8), time(20)), (time(22), time(6))
    assert not is_open(*day, time(7, 59))
    assert is_open(*day, time(8, 0))
    assert is_open(*day, time(19, 59, 59))
    assert not is_open(*day, time(20, 0))
    assert is_open(*night, time(23, 30)) and is_open(*night, time(0, 0))
    assert is_open(*night, time(5, 59)) and is_open(*night, time(22, 0))
    assert not is_open(*night, time(6, 0)) and not is_open(*night, time(12, 0))
    assert all(is_open(time(9), time(9), time(h, 30)) for h in range(24))


def test_policy_is_validated() -> None:
    with pytest.raises(ValidationError):
        SelectionPolicy(rank_weight=0, distance_weight=0, load_weight=0)
    with pytest.raises(ValidationError):
        SelectionPolicy(rank_weight=-1)
    with pytest.raises(ValidationError):
        SelectionPolicy(new_vendor_rank=120)
    with pytest.raises(ValidationError):
        SelectionPolicy(tie_break="random")
    with pytest.raises(ValidationError):
        SelectionPolicy(max_distance_km=0)


# -- each rule on both backends ------------------------------------------------------------

async def test_only_vendors_offering_the_service_and_covering_the_county(
        db_session: AsyncSession) -> None:
    meal = await add_vendor(db_session, "食堂甲", services=(ServiceType.MEAL,))
    both = await add_vendor(db_session, "综合乙",
                            services=(ServiceType.MEAL, ServiceType.HOUSEKEEPING))
    await add_vendor(db_session, "家政丙", services=(ServiceType.HOUSEKEEPING,))
    await add_vendor(db_session, "七里河丁", counties=(QILIHE,))
    order = await _order(db_session)
    assert sorted(await _ids(db_session, order)) == [meal, both]
    cleaning = await _order(db_session, service=ServiceType.HOUSEKEEPING)
    assert len(await _ids(db_session, cleaning)) == 2
    emergency = await _order(db_session, service=ServiceType.EMERGENCY)
    assert await _ids(db_session, emergency) == []
    nowhere = await _order(db_session, county=None)
    assert await _ids(db_session, nowhere) == []


async def test_distance_limit_applies_only_where_both_sides_have_coordinates(
        db_session: AsyncSession) -> None:
    near = await add_vendor(db_session, "近", km=2.0)
    far = await add_vendor(db_session, "远", km=30.0)
    unplaced = await add_vendor(db_session, "无坐标", km=None)
    order = await _order(db_session)
    found = {c.vendor_id: c for c in await vendor_candidates(
        db_session, order_id=order, at=NOON, tz=TZ, policy=POLICY)}
    assert set(found) == {near, unplaced}
    assert found[near].distance_km == pytest.approx(2.0, abs=0.01)
    assert found[unplaced].distance_km is None
    assert far in await _ids(db_session, order, policy=SelectionPolicy(max_distance_km=None))
    assert set(await _ids(db_session, order, policy=SelectionPolicy(max_distance_km=1.5))) == {
        unplaced}
    unplaced_elder = await _order(db_session, km=None)
    assert set(await _ids(db_session, unplaced_elder)) == {near, far, unplaced}


async def test_opening_hours_in_local_time_including_overnight_and_24h(
        db_session: AsyncSession) -> None:
    day = await add_vendor(db_session, "日班", opens=time(8), closes=time(20))
    night = await add_vendor(db_session, "夜班", opens=time(22), closes=time(6))
    allday = await add_vendor(db_session, "全天", opens=time(0), closes=time(0))
    order = await _order(db_session)
    at_local = {  # UTC instants and the Lanzhou local time they are
        datetime(2026, 11, 23, 4, 0, tzinfo=UTC): {day, allday},  # 12:00
        datetime(2026, 11, 23, 15, 30, tzinfo=UTC): {night, allday},  # 23:30
        datetime(2026, 11, 23, 21, 59, tzinfo=UTC): {night, allday},  # 05:59 next day
        datetime(2026, 11, 23, 22, 0, tzinfo=UTC): {allday},  # 06:00
        datetime(2026, 11, 23, 0, 0, tzinfo=UTC): {day, allday},  # 08:00
        datetime(2026, 11, 23, 12, 0, tzinfo=UTC): {allday},  # 20:00
    }
    for at, expected in at_local.items():
        assert set(await _ids(db_session, order, at=at)) == expected, at
    anytime = SelectionPolicy(require_open=False)
    assert set(await _ids(db_session, order, at=datetime(2026, 11, 23, 22, 0, tzinfo=UTC),
                          policy=anytime)) == {day, night, allday}
    with pytest.raises(ValueError, match="naive"):
        await _ids(db_session, order, at=datetime(2026, 11, 23, 12, 0))


async def test_suspended_and_removed_vendors_are_never_chosen(db_session: AsyncSession) -> None:
    active = await add_vendor(db_session, "在营", rank=10.0)
    await add_vendor(db_session, "暂停", status=VendorStatus.SUSPENDED, rank=100.0)
    await add_vendor(db_session, "淘汰", status=VendorStatus.REMOVED, rank=100.0)
    order = await _order(db_session)
    policy = SelectionPolicy(require_open=False, max_distance_km=None)
    assert await _ids(db_session, order, policy=policy) == [active]


async def test_vendors_at_capacity_get_no_offer(db_session: AsyncSession) -> None:
    full = await add_vendor(db_session, "满", max_open=2)
    spare = await add_vendor(db_session, "有空", max_open=2)
    closed_shop = await add_vendor(db_session, "零容量", max_open=0)
    elder = await add_elder(db_session, created=NOON)
    for status in (OrderStatus.ACCEPTED, OrderStatus.IN_SERVICE):
        await add_order(db_session, elder, NOON, status=status, vendor_id=full)
    await add_order(db_session, elder, NOON, status=OrderStatus.IN_SERVICE, vendor_id=spare)
    for status in (OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.ESCALATED):
        await add_order(db_session, elder, NOON, status=status, vendor_id=spare)
    order = await _order(db_session)
    found = await vendor_candidates(db_session, order_id=order, at=NOON, tz=TZ, policy=POLICY)
    assert [(c.vendor_id, c.open_orders) for c in found] == [(spare, 1)]
    assert closed_shop not in [c.vendor_id for c in found]


async def test_excluded_vendors_and_vendors_without_a_phone_are_skipped(
        db_session: AsyncSession) -> None:
    first, second, third = await add_vendors(
        db_session, [vendor_row("甲", rank=90.0), vendor_row("乙", rank=80.0),
                     vendor_row("丙", rank=70.0)])
    await add_vendor(db_session, "无电话", rank=100.0, phones=0)
    order = await _order(db_session)
    assert await _ids(db_session, order) == [first, second, third]
    assert await _ids(db_session, order, exclude=(first, third)) == [second]
    assert await _ids(db_session, order, exclude=(first, second, third)) == []


async def test_the_dispatch_line_is_the_first_phone_by_id(db_session: AsyncSession) -> None:
    vendor = await add_vendor(db_session, "两部电话", phones=0)
    await db_session.execute(insert(VendorPhone), [
        {"vendor_id": vendor, "number_e164": "+869318000001", "label": "调度电话"},
        {"vendor_id": vendor, "number_e164": "+8613900000002", "label": "负责人手机"},
    ])
    await db_session.commit()
    order = await _order(db_session)
    (found,) = await vendor_candidates(db_session, order_id=order, at=NOON, tz=TZ,
                                       policy=POLICY)
    assert found.phone_e164 == "+869318000001"
    assert found.name == "两部电话"


async def test_ranking_by_quality_distance_and_load(db_session: AsyncSession) -> None:
    good, poor, new = await add_vendors(db_session, [
        vendor_row("优", rank=90.0), vendor_row("差", rank=40.0), vendor_row("新", rank=None)])
    order = await _order(db_session)
    found = await vendor_candidates(db_session, order_id=order, at=NOON, tz=TZ, policy=POLICY)
    assert [c.vendor_id for c in found] == [good, new, poor]  # new vendors rank 60 by default
    assert [c.rank_score for c in found] == [90.0, None, 40.0]
    assert found[0].score > found[1].score > found[2].score
    assert all(0 <= c.score <= 100 for c in found)
    trusted_newcomers = SelectionPolicy(new_vendor_rank=95.0)
    assert await _ids(db_session, order, policy=trusted_newcomers) == [new, good, poor]
    wary = SelectionPolicy(new_vendor_rank=0.0)
    assert await _ids(db_session, order, policy=wary) == [good, poor, new]

    # Equal quality: the nearer vendor first; equal quality and distance: the less loaded.
    near, far = await add_vendors(db_session, [vendor_row("近", rank=70.0, km=0.5),
                                               vendor_row("远", rank=70.0, km=10.0)],
                                  services=(ServiceType.HEALTH,))
    health = await _order(db_session, service=ServiceType.HEALTH)
    assert await _ids(db_session, health) == [near, far]
    busy, idle = await add_vendors(db_session, [vendor_row("忙", max_open=4),
                                                vendor_row("闲", max_open=4)],
                                   services=(ServiceType.HOUSEKEEPING,))
    elder = await add_elder(db_session, created=NOON)
    for _ in range(3):
        await add_order(db_session, elder, NOON, service=ServiceType.HOUSEKEEPING,
                        status=OrderStatus.ACCEPTED, vendor_id=busy)
    cleaning = await _order(db_session, service=ServiceType.HOUSEKEEPING)
    assert await _ids(db_session, cleaning) == [idle, busy]
    quality_only = SelectionPolicy(distance_weight=0, load_weight=0)
    assert await _ids(db_session, cleaning, policy=quality_only) == [idle, busy]  # tie-break
    by_id = SelectionPolicy(distance_weight=0, load_weight=0, tie_break="vendor_id")
    assert await _ids(db_session, cleaning, policy=by_id) == [busy, idle]


async def test_nearest_tie_break_puts_unplaced_vendors_last(db_session: AsyncSession) -> None:
    unplaced, far, near = await add_vendors(db_session, [
        vendor_row("无坐标", km=None), vendor_row("远", km=8.0), vendor_row("近", km=3.0)])
    order = await _order(db_session)
    policy = SelectionPolicy(distance_weight=0, load_weight=0, tie_break="nearest")
    assert await _ids(db_session, order, policy=policy) == [near, far, unplaced]


async def test_unknown_order_is_a_clear_error(db_session: AsyncSession) -> None:
    with pytest.raises(UnknownOrderError, match="no work order with id 424242"):
        await _ids(db_session, 424242)


async def test_query_count_does_not_grow_with_the_number_of_vendors(
        db_session: AsyncSession) -> None:
    engine = db_session.bind.sync_engine  # type: ignore[union-attr]
    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    async def candidates() -> tuple[list[Candidate], int]:
        statements.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            found = await vendor_candidates(db_session, order_id=order, at=NOON, tz=TZ,
                                            policy=POLICY)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return found, len(statements)

    loaded = (await add_vendors(db_session, [vendor_row(f"商家{i}", rank=float(i))
                                             for i in range(10)]))[:3]
    order = await _order(db_session)
    few, few_queries = await candidates()
    await add_vendors(db_session, [vendor_row(f"商家{i}", rank=float(i % 100), km=i % 25)
                                   for i in range(10, 500)])
    elder = await add_elder(db_session, created=NOON)
    for vendor_id in loaded:
        await add_order(db_session, elder, NOON, status=OrderStatus.ACCEPTED,
                        vendor_id=vendor_id)
    many, many_queries = await candidates()
    assert len(few) == 10
    assert len(many) == 10 + sum(1 for i in range(10, 500) if i % 25 <= 20)
    assert few_queries == many_queries == 2  # the order, then every candidate at once
    assert {c.open_orders for c in many if c.vendor_id in loaded} == {1}
