"""What the family escalation of an emergency reads: its timeline so far, and the open
emergencies whose escalation never finished (to resume after a crash or an outage)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import OrderEvent, OrderStatus, ServiceType, WorkOrder

# Timeline events after which an escalation is over: someone pressed 1, every contact gave a
# real result, or the elder has no family on record.
FINISHED = ("family_acknowledged", "family_unreached", "family_none")
CLOSED = (OrderStatus.COMPLETED, OrderStatus.CANCELLED)


async def timeline(session: AsyncSession, order_id: int) -> list[tuple[str, dict[str, Any]]]:
    """The order's events, oldest first, as (kind, detail)."""
    rows = (await session.execute(
        select(OrderEvent.kind, OrderEvent.detail)
        .where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
    )).all()
    return [(kind, detail or {}) for kind, detail in rows]


async def unfinished(session: AsyncSession, since: datetime) -> list[tuple[int, int]]:
    """(order id, elder id) of open emergencies since ``since`` whose escalation never
    finished, oldest first."""
    finished = exists().where(OrderEvent.order_id == WorkOrder.id,
                              OrderEvent.kind.in_(FINISHED))
    rows = (await session.execute(
        select(WorkOrder.id, WorkOrder.elder_id)
        .where(WorkOrder.service == ServiceType.EMERGENCY, WorkOrder.status.not_in(CLOSED),
               WorkOrder.created_at >= since, ~finished)
        .order_by(WorkOrder.id)
    )).all()
    return [(order_id, elder_id) for order_id, elder_id in rows]


async def has_event_at(session: AsyncSession, order_id: int, kind: str, at: datetime) -> bool:
    """The order's timeline already holds its ``kind`` event of time ``at`` (a write retried
    after its commit's answer was lost)."""
    found = await session.scalar(
        select(OrderEvent.id).where(OrderEvent.order_id == order_id, OrderEvent.kind == kind,
                                    OrderEvent.at == at).limit(1))
    return found is not None


async def has_call_event(session: AsyncSession, order_id: int, kind: str, uniqueid: str
                         ) -> bool:
    """The order's timeline already holds a ``kind`` event about the call ``uniqueid``."""
    details = (await session.execute(
        select(OrderEvent.detail).where(OrderEvent.order_id == order_id,
                                        OrderEvent.kind == kind))).scalars()
    return any((detail or {}).get("uniqueid") == uniqueid for detail in details)
