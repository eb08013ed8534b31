"""Closing an alarm: real emergency, accidental press, test, or no response; who and when."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.hotpath import Planned, write_transaction
from dispatch.models import OrderStatus, ServiceType, WorkOrder
from dispatch.orders import order_event


class Disposition(StrEnum):
    REAL_EMERGENCY = "real_emergency"
    ACCIDENTAL = "accidental"
    TEST = "test"
    NO_RESPONSE = "no_response"


class DispositionError(ValueError):
    """The order is not an open emergency, or the closing data is incomplete."""


async def close_alarm(session: AsyncSession, order_no: str, disposition: Disposition | str,
                      closed_by: str, at: datetime, note: str = "",
                      also: Sequence[Planned] = ()) -> None:
    """Close an emergency order with its disposition (and the operator's note); the timeline
    keeps who and when. ``also`` (an audit row) is committed in the same transaction."""
    disposition = Disposition(disposition)
    if not closed_by.strip():
        raise DispositionError("an alarm is closed by someone: give the operator's name or id")
    order = await session.scalar(select(WorkOrder).where(WorkOrder.order_no == order_no))
    if order is None or order.service != ServiceType.EMERGENCY:
        raise DispositionError(f"no emergency order {order_no}")
    if order.status in (OrderStatus.COMPLETED, OrderStatus.CANCELLED):
        raise DispositionError(f"order {order_no} is already closed")
    status = (OrderStatus.COMPLETED if disposition is Disposition.REAL_EMERGENCY
              else OrderStatus.CANCELLED)
    order_id = order.id
    await session.rollback()  # end the read before writing (SQLite has one writer)
    detail = {"disposition": disposition.value, "closed_by": closed_by.strip()}
    if note.strip():
        detail["note"] = note.strip()
    await write_transaction(
        session, (_SET_STATUS, {"order_id": order_id, "status": status}),
        lambda _row: [order_event(order_id, "alarm_closed", at, detail), *also],
    )


_SET_STATUS = (
    update(WorkOrder)
    .where(WorkOrder.id == bindparam("order_id"))
    .values(status=bindparam("status"))
)
