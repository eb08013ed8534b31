"""What the demo reads and sets in the database: elders' settings by phone number, vendors'
lines and ids, accepted orders with the worker who will report on them, whether dispatch still has
work in hand, the caring-call rounds still going, and the calls and orders its summary
checks."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.care_calls import ESCALATING, OPEN_STATES
from dispatch.models import (
    Call,
    CareRound,
    Elder,
    ElderPhone,
    OrderEvent,
    OrderStatus,
    OutboundCall,
    RoundState,
    ServiceType,
    Vendor,
    VendorPhone,
    VendorWorker,
    WorkOrder,
)
from dispatch.overdue import LIVE


class AcceptedOrder(NamedTuple):
    order_id: int
    order_no: str
    elder_id: int
    worker_number: str  # E.164


async def vendor_lines(session: AsyncSession) -> list[str]:
    """Every vendor dispatch line (E.164)."""
    return list(await session.scalars(select(VendorPhone.number_e164)))


async def vendor_ids(session: AsyncSession) -> list[int]:
    """Every vendor's id, in order."""
    return [int(i) for i in await session.scalars(select(Vendor.id).order_by(Vendor.id))]


async def accepted_orders(session: AsyncSession) -> list[AcceptedOrder]:
    """Orders accepted and not yet visited, each with its vendor's workers, by order."""
    rows = await session.execute(
        select(WorkOrder.id, WorkOrder.order_no, WorkOrder.elder_id, VendorWorker.number_e164)
        .join(VendorWorker, VendorWorker.vendor_id == WorkOrder.vendor_id)
        .where(WorkOrder.status == OrderStatus.ACCEPTED)
        .order_by(WorkOrder.id, VendorWorker.id))
    return [AcceptedOrder(*row) for row in rows.all()]


async def dispatch_in_hand(session: AsyncSession, visited: Collection[int]) -> int:
    """Orders still offered to vendors, outbound calls scheduled or under way, and accepted
    orders outside ``visited``: zero once dispatch has nothing left to do."""
    counts = [
        select(func.count()).select_from(WorkOrder).where(
            WorkOrder.service != ServiceType.EMERGENCY,
            WorkOrder.status.in_((OrderStatus.NEW, OrderStatus.DISPATCHING))),
        select(func.count()).select_from(OutboundCall).where(OutboundCall.state.in_(LIVE)),
        select(func.count()).select_from(WorkOrder).where(
            WorkOrder.status == OrderStatus.ACCEPTED,
            WorkOrder.id.not_in(list(visited) or [0])),
    ]
    return sum([int(await session.scalar(count) or 0) for count in counts])


async def care_rounds_going(session: AsyncSession) -> int:
    """Caring-call rounds not yet ended, or escalated with their welfare check not open."""
    return int(await session.scalar(select(func.count()).select_from(CareRound).where(
        CareRound.state.in_(OPEN_STATES) | (
            (CareRound.state == RoundState.ESCALATED) & (CareRound.outcome == ESCALATING)))
    ) or 0)


async def events_raised(session: AsyncSession, order_ids: Collection[int],
                        kinds: Collection[str]) -> set[tuple[int, str]]:
    """Which of ``kinds`` the timelines of ``order_ids`` already hold, as (order, kind)."""
    rows = await session.execute(
        select(OrderEvent.order_id, OrderEvent.kind).where(
            OrderEvent.order_id.in_(list(order_ids)), OrderEvent.kind.in_(list(kinds))))
    return {(order_id, kind) for order_id, kind in rows.all()}


def prefer_language(conn: Connection, numbers: Collection[str], language: str) -> None:
    """Make the elders who own ``numbers`` (E.164) prefer ``language`` (the caller commits)."""
    owners = select(ElderPhone.elder_id).where(ElderPhone.number_e164.in_(list(numbers)))
    conn.execute(update(Elder).where(Elder.id.in_(owners)).values(preferred_language=language))


async def owners_of(session: AsyncSession, numbers: Collection[str]) -> list[int]:
    """The elders whose own phones ``numbers`` (E.164) are, by id."""
    return sorted(await session.scalars(select(ElderPhone.elder_id).distinct()
                                        .where(ElderPhone.number_e164.in_(list(numbers)))))


def calls_and_orders(conn: Connection) -> tuple[dict[str, Row[Any]], dict[int, Row[Any]]]:
    """Every call record by uniqueid and every order by id (rows with the tables' columns)."""
    calls = {row.uniqueid: row for row in conn.execute(select(Call))}
    orders = {row.id: row for row in conn.execute(select(WorkOrder))}
    return calls, orders
