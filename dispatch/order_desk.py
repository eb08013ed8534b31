"""What an operator does to orders from the console, each change with its audit row in the
same transaction: enter an order by hand, assign an escalated order to a vendor, cancel.

Orders entered here start as ``new``, exactly like the engine's: the dispatcher's sweep
finds them and offers them to vendors. The region check comes first: an elder or an order
outside the operator's region is refused as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.audit import Actor, audit_row
from dispatch.console_queries import vendors_for, visible_elder, visible_order
from dispatch.models import CallPurpose, OrderSource, OrderStatus, ServiceType, WorkOrder
from dispatch.orders import create_order, order_event
from dispatch.outbound import cancelling
from dispatch.regions import RegionScope

NOTE_MAX = 500
REASON_MAX = 200
CANCELLABLE = (OrderStatus.NEW, OrderStatus.DISPATCHING, OrderStatus.ESCALATED)
HAND_SERVICES = (ServiceType.MEAL, ServiceType.HOUSEKEEPING, ServiceType.HEALTH)


class DeskError(ValueError):
    """The change cannot be made; the message says why, for the operator."""


async def enter_order(session: AsyncSession, scope: RegionScope, actor: Actor, elder_id: int,
                      service: ServiceType, note: str | None, call_uniqueid: str | None,
                      at: datetime) -> WorkOrder:
    """An order taken by an operator on the phone, for an elder of their region."""
    if service not in HAND_SERVICES:
        raise DeskError("an emergency is not entered by hand: bridge 120 from the call")
    if note is not None and len(note) > NOTE_MAX:
        raise DeskError(f"the note is longer than {NOTE_MAX} characters")
    if await visible_elder(session, scope, elder_id) is None:
        raise DeskError(f"no elder {elder_id} in your region")
    await session.rollback()  # end the read before writing (SQLite has one writer)
    return await create_order(
        session, elder_id=elder_id, service=service, source=OrderSource.OPERATOR,
        call_uniqueid=call_uniqueid, requested_by=actor.name, at=at, note=note,
        also=lambda order_no: [audit_row(actor, "order_entered", at, order_no,
                                         {"service": service.value, "elder_id": elder_id})])


async def assign_by_hand(session: AsyncSession, scope: RegionScope, actor: Actor,
                         order_no: str, vendor_id: int, at: datetime,
                         arrival_window_s: float) -> None:
    """Give an escalated order to a vendor the operator has reached themselves."""
    order = await _visible(session, scope, order_no)
    elder = await visible_elder(session, scope, order.elder_id)
    county = elder.county_code if elder else None
    if vendor_id not in {found for found, _name in await vendors_for(session, county)}:
        await session.rollback()
        raise DeskError("that vendor is not an active vendor of the elder's county")
    moved = await session.execute(
        update(WorkOrder).where(WorkOrder.id == order.id,
                                WorkOrder.status == OrderStatus.ESCALATED)
        .values(status=OrderStatus.ACCEPTED, vendor_id=vendor_id, accepted_at=at,
                arrive_deadline=at + timedelta(seconds=arrival_window_s)))
    await _finish(session, moved.rowcount, order, at, actor, "assigned_by_hand",
                  {"vendor_id": vendor_id, "by": actor.name})


async def cancel_order(session: AsyncSession, scope: RegionScope, actor: Actor,
                       order_no: str, reason: str, at: datetime) -> None:
    """Cancel an order no vendor has taken yet, with the operator's reason."""
    reason = reason.strip()
    if not reason or len(reason) > REASON_MAX:
        raise DeskError(f"a cancellation needs a reason of 1 to {REASON_MAX} characters")
    order = await _visible(session, scope, order_no)
    moved = await session.execute(
        update(WorkOrder).where(WorkOrder.id == order.id, WorkOrder.status.in_(CANCELLABLE))
        .values(status=OrderStatus.CANCELLED))
    await _finish(session, moved.rowcount, order, at, actor, "cancelled_by_operator",
                  {"reason": reason, "by": actor.name})


async def _visible(session: AsyncSession, scope: RegionScope, order_no: str) -> WorkOrder:
    order = await visible_order(session, scope, order_no)
    if order is None:
        raise DeskError(f"no order {order_no} in your region")
    return order


async def _finish(session: AsyncSession, rowcount: int, order: WorkOrder, at: datetime,
                  actor: Actor, kind: str, detail: dict[str, object]) -> None:
    """The order moved: cancel its pending offers, log the event and the audit row, COMMIT;
    it had not (someone else changed it first): roll back and say so."""
    order_id, order_no, status = order.id, order.order_no, order.status
    if rowcount != 1:
        await session.rollback()
        raise DeskError(f"order {order_no} was {status.value}, or changed meanwhile: "
                        "reload the page")
    await session.execute(cancelling(order_id, CallPurpose.VENDOR_OFFER, at))
    for statement, params in (order_event(order_id, kind, at, dict(detail)),
                              audit_row(actor, kind, at, order_no, dict(detail))):
        await session.execute(statement, params)
    await session.commit()
