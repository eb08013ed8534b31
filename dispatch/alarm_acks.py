"""An operator acknowledges a new emergency: the consoles stop sounding for it.

The acknowledgement is an ``operator_acknowledged`` event on the order's timeline (who and
when) committed together with an ``alarm_acknowledged`` outbox row, so every console hears of
it; acknowledging twice changes nothing. It neither answers nor closes the alarm: the order
stays on the worklist until a disposition closes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.console_events import AlarmAcknowledged, ConsoleEventName
from dispatch.dispositions import DispositionError
from dispatch.hotpath import Planned, write_transaction
from dispatch.models import Elder, OrderEvent, OrderStatus, ServiceType
from dispatch.orders import find_order, order_event
from dispatch.outbox import outbox_row
from dispatch.regions import Place

ACK_EVENT = "operator_acknowledged"
ACK_ANNOUNCEMENT = ConsoleEventName.ALARM_ACKNOWLEDGED
CLOSED = (OrderStatus.COMPLETED, OrderStatus.CANCELLED)


async def acknowledge_alarm(session: AsyncSession, order_no: str, by: str, at: datetime,
                            also: Sequence[Planned] = ()) -> bool:
    """Acknowledge an open emergency order; False if it was acknowledged already. ``also``
    are statements (an audit row) committed in the same transaction. DispositionError if
    ``order_no`` is no open emergency."""
    if not by.strip():
        raise DispositionError("an alarm is acknowledged by someone: give the operator")
    order = await find_order(session, order_no)
    if order is None or order.service != ServiceType.EMERGENCY:
        raise DispositionError(f"no emergency order {order_no}")
    if order.status in CLOSED:
        raise DispositionError(f"order {order_no} is already closed")
    order_id = order.id
    known = await session.scalar(select(OrderEvent.id).where(
        OrderEvent.order_id == order_id, OrderEvent.kind == ACK_EVENT).limit(1))
    place = await session.execute(
        select(Elder.province_code, Elder.city_code, Elder.county_code)
        .where(Elder.id == order.elder_id))
    codes = place.first()
    await session.rollback()  # end the read before writing (SQLite has one writer)
    if known is not None:
        return False
    announced = AlarmAcknowledged(order_no=order_no, order_id=order_id, by=by.strip(),
                                  place=Place(*codes) if codes is not None else Place())
    await write_transaction(
        session, order_event(order_id, ACK_EVENT, at, {"by": by.strip()}),
        lambda _row: [outbox_row(announced, at), *also])
    return True


async def acknowledged(session: AsyncSession, order_ids: Iterable[int]) -> set[int]:
    """Which of ``order_ids`` an operator has acknowledged."""
    wanted = sorted(set(order_ids))
    if not wanted:
        return set()
    rows = await session.scalars(select(OrderEvent.order_id).where(
        OrderEvent.order_id.in_(wanted), OrderEvent.kind == ACK_EVENT).distinct())
    return set(rows)

