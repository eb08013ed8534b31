"""The console's region policy in the query layer, on SQLite and PostgreSQL: a county sees
its county, a city its counties, a province everything in it; and the order desk's changes,
the login throttle and the audit rows they write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.account_store import AccountError, account_by_id, add_account, sign_in
from dispatch.accounts import Role
from dispatch.audit import Actor, entries_since, format_entries
from dispatch.console_queries import (
    escalated_orders,
    order_exists,
    order_view,
    search_elders,
    search_orders,
    visible_elder,
    visible_order,
)
from dispatch.models import AuditEntry, Elder, OrderStatus, OutboundCall, ServiceType, WorkOrder
from dispatch.order_desk import DeskError, assign_by_hand, cancel_order, enter_order
from dispatch.passwords import PasswordError
from dispatch.regions import Place, RegionScope
from tests.console_world import CHAOYANG, HEPING, World, seed_world

COUNTY = RegionScope.parse(f"county:{CHAOYANG[2]}")
CITY = RegionScope.parse(f"city:{CHAOYANG[1]}")
PROVINCE = RegionScope.parse(f"province:{HEPING[0]}")
AREA = "10"
ACTOR = Actor(None, "zhang", "127.0.0.1")


@pytest.fixture
def world(migrated_db_url: str) -> World:
    return seed_world(migrated_db_url)


async def _visible_orders(session: AsyncSession, scope: RegionScope, world: World) -> set[str]:
    return {label for label, no in world.orders.items()
            if await visible_order(session, scope, no) is not None}


async def test_each_level_sees_its_own_orders_and_elders(world: World,
                                                         db_session: AsyncSession) -> None:
    chaoyang = {"chaoyang", "escalated", "escalated2", "emergency"}
    assert await _visible_orders(db_session, COUNTY, world) == chaoyang
    assert await _visible_orders(db_session, CITY, world) == chaoyang | {"dongcheng"}
    assert await _visible_orders(db_session, PROVINCE, world) == {"heping"}
    assert await order_exists(db_session, world.orders["heping"])
    assert not await order_exists(db_session, "12345678")
    assert await order_view(db_session, COUNTY, world.orders["dongcheng"]) is None
    view = await order_view(db_session, CITY, world.orders["dongcheng"])
    assert view is not None and view.elder.name == "赵淑珍"
    assert [e.kind for e in view.timeline] == ["created"]
    for name, elder_id in world.elders.items():
        elder = await db_session.get(Elder, elder_id)
        assert elder is not None
        place = Place(elder.province_code, elder.city_code, elder.county_code)
        for scope in (COUNTY, CITY, PROVINCE):
            found = await visible_elder(db_session, scope, elder_id)
            assert (found is not None) == scope.covers(place), (name, scope)


async def test_search_by_number_phone_and_name_stays_in_the_region(
        world: World, db_session: AsyncSession) -> None:
    async def found(scope: RegionScope, query: str) -> set[str]:
        return {row.order_no for row in await search_orders(db_session, scope, query, AREA)}

    assert await found(COUNTY, world.orders["chaoyang"]) == {world.orders["chaoyang"]}
    assert await found(COUNTY, world.orders["heping"]) == set()
    assert await found(COUNTY, "13800000011") == {world.orders["chaoyang"],
                                                   world.orders["escalated"]}
    assert await found(COUNTY, "138 0000 0021") == set()
    assert await found(CITY, "138 0000 0021") == {world.orders["dongcheng"]}
    assert await found(COUNTY, "桂兰") == set()
    assert await found(PROVINCE, "桂兰") == {world.orders["heping"]}
    assert await found(COUNTY, "%") == set()  # LIKE wildcards are literal
    assert [e.name for e in await search_elders(db_session, CITY, "淑", AREA)] == ["赵淑珍"]
    assert await search_elders(db_session, COUNTY, "淑", AREA) == []
    assert {row.order_no for row in await escalated_orders(db_session, COUNTY)} == {
        world.orders["escalated"], world.orders["escalated2"]}
    assert await escalated_orders(db_session, PROVINCE) == []


async def test_an_order_entered_by_hand_is_new_with_its_note_and_audit_row(
        world: World, db_session: AsyncSession) -> None:
    at = datetime.now(UTC)
    order = await enter_order(db_session, COUNTY, ACTOR, world.elders["李秀英"],
                              ServiceType.MEAL, "午饭少盐", None, at)
    stored = await db_session.get(WorkOrder, order.id)
    assert stored is not None and stored.status is OrderStatus.NEW
    assert (stored.source.value, stored.requested_by) == ("operator", "zhang")
    view = await order_view(db_session, COUNTY, order.order_no or "")
    assert view is not None and view.timeline[0].detail["note"] == "午饭少盐"
    audit = await entries_since(db_session, at)
    assert [(a.action, a.target) for a in audit] == [("order_entered", order.order_no)]
    for elder, service in ((world.elders["赵淑珍"], ServiceType.MEAL),
                           (world.elders["李秀英"], ServiceType.EMERGENCY)):
        with pytest.raises(DeskError):
            await enter_order(db_session, COUNTY, ACTOR, elder, service, None, None, at)
    assert await db_session.scalar(select(func.count()).select_from(WorkOrder)) == 7


async def test_escalated_orders_are_assigned_or_cancelled_once(
        world: World, db_session: AsyncSession) -> None:
    at = datetime.now(UTC)
    first, second = world.orders["escalated"], world.orders["escalated2"]
    with pytest.raises(DeskError):  # a vendor of another county is refused
        await assign_by_hand(db_session, COUNTY, ACTOR, first, world.vendor_id + 99, at, 1800.0)
    await assign_by_hand(db_session, COUNTY, ACTOR, first, world.vendor_id, at, 1800.0)
    with pytest.raises(DeskError):
        await assign_by_hand(db_session, COUNTY, ACTOR, first, world.vendor_id, at, 1800.0)
    with pytest.raises(DeskError):
        await cancel_order(db_session, COUNTY, ACTOR, first, "重复", at)
    with pytest.raises(DeskError):
        await cancel_order(db_session, COUNTY, ACTOR, second, "  ", at)
    with pytest.raises(DeskError):
        await cancel_order(db_session, COUNTY, ACTOR, world.orders["dongcheng"], "越权", at)
    await cancel_order(db_session, COUNTY, ACTOR, second, "老人已自行解决", at)
    rows = {o.order_no: o for o in (await db_session.scalars(select(WorkOrder))).all()}
    assert (rows[first].status, rows[first].vendor_id) == (OrderStatus.ACCEPTED, world.vendor_id)
    assert rows[second].status is OrderStatus.CANCELLED
    assert rows[world.orders["dongcheng"]].status is OrderStatus.NEW
    view = await order_view(db_session, COUNTY, second)
    assert view is not None and view.timeline[-1].kind == "cancelled_by_operator"
    assert view.timeline[-1].detail == {"reason": "老人已自行解决", "by": "zhang"}
    assert [a.action for a in await entries_since(db_session, at)] == [
        "assigned_by_hand", "cancelled_by_operator"]
    assert await db_session.scalar(select(func.count()).select_from(OutboundCall)) == 0


async def test_accounts_sign_in_and_the_sixth_failure_a_minute_is_refused(
        migrated_db_url: str, db_session: AsyncSession) -> None:
    at = datetime.now(UTC)
    made = await add_account(db_session, "li", Role.SUPERVISOR, CITY, "a long password",
                             at, seat="op1002")
    assert await account_by_id(db_session, made.id) == made
    with pytest.raises(AccountError):
        await add_account(db_session, "li", Role.OPERATOR, COUNTY, "another password", at)
    with pytest.raises(PasswordError):
        await add_account(db_session, "short", Role.OPERATOR, COUNTY, "123", at)
    assert (await sign_in(db_session, "li", "a long password", "10.0.0.1", at, 5)).account == made
    for n in range(5):
        outcome = await sign_in(db_session, "li", f"wrong {n}", "10.0.0.2", at, 5)
        assert outcome.account is None and not outcome.throttled
    refused = await sign_in(db_session, "li", "a long password", "10.0.0.3", at, 5)
    assert refused.throttled and refused.account is None
    later = at + timedelta(seconds=61)  # the name's failures are past; one address's count
    for n in range(5):
        assert not (await sign_in(db_session, f"guess{n}", "x", "10.0.0.9", later, 5)).throttled
    assert (await sign_in(db_session, "li", "a long password", "10.0.0.9", later, 5)).throttled
    assert (await sign_in(db_session, "li", "a long password", "10.0.0.3", later, 5)).account
    actions = [a.action for a in await entries_since(db_session, at)]
    assert actions == ["login", *["login_failed"] * 5, "login_throttled",
                       *["login_failed"] * 5, "login_throttled", "login"]
    rows = (await db_session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert "login_throttled" in format_entries(list(rows))

