"""Work orders in a chosen state, written straight to the database for money tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import OrderStatus, ServiceType, WorkOrder
from dispatch.orders import create_order


async def completed_order(session: AsyncSession, elder_id: int, vendor_id: int,
                          at: datetime, service: ServiceType = ServiceType.MEAL) -> int:
    """An order of ``service`` for the elder, completed by the vendor at ``at``; its id."""
    order = await create_order(session, elder_id=elder_id, service=service, source="phone",
                               call_uniqueid=None, requested_by="elder", at=at)
    await session.execute(update(WorkOrder).where(WorkOrder.id == order.id).values(
        status=OrderStatus.COMPLETED, vendor_id=vendor_id, completed_at=at))
    await session.commit()
    return order.id
