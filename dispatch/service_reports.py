"""Workers' reports by phone: the vendor's worker keys an order number, then arrived or done."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import Elder, OrderStatus, VendorWorker, WorkOrder
from dispatch.orders import is_valid_order_no, order_event
from dispatch.regions import Place


@dataclass(frozen=True)
class Worker:
    id: int
    vendor_id: int
    name: str


@dataclass(frozen=True)
class WorkerOrder:
    id: int
    order_no: str
    status: OrderStatus
    place: Place  # the elder's region


async def worker_by_number(session: AsyncSession, number_e164: str | None) -> Worker | None:
    """The active worker registered with this phone number, else None."""
    if not number_e164:
        return None
    row = (await session.execute(
        select(VendorWorker.id, VendorWorker.vendor_id, VendorWorker.name)
        .where(VendorWorker.number_e164 == number_e164, VendorWorker.active.is_(True))
    )).first()
    return Worker(*row) if row is not None else None


async def worker_order(session: AsyncSession, order_no: str, worker: Worker) -> WorkerOrder | None:
    """The order with this number if the worker's vendor holds it, else None."""
    if not is_valid_order_no(order_no):
        return None
    row = (await session.execute(
        select(WorkOrder.id, WorkOrder.order_no, WorkOrder.status, Elder.province_code,
               Elder.city_code, Elder.county_code)
        .join(Elder, Elder.id == WorkOrder.elder_id)
        .where(WorkOrder.order_no == order_no, WorkOrder.vendor_id == worker.vendor_id)
    )).first()
    return WorkerOrder(*row[:3], Place(*row[3:])) if row is not None else None


async def _report(session: AsyncSession, order_id: int, worker: Worker, at: datetime,
                  kind: str, allowed: tuple[OrderStatus, ...], **values: object) -> bool:
    moved = await session.execute(
        update(WorkOrder)
        .where(WorkOrder.id == order_id, WorkOrder.vendor_id == worker.vendor_id,
               WorkOrder.status.in_(allowed))
        .values(worker_id=worker.id, **values)
    )
    if moved.rowcount != 1:
        await session.rollback()
        return False
    statement, params = order_event(order_id, kind, at, {"worker_id": worker.id})
    await session.execute(statement, params)
    await session.commit()
    return True


async def report_arrived(session: AsyncSession, order_id: int, worker: Worker,
                         at: datetime) -> bool:
    """The worker is at the elder's door. COMMITs; False if the order is not awaiting them."""
    return await _report(session, order_id, worker, at, "arrived", (OrderStatus.ACCEPTED,),
                         status=OrderStatus.IN_SERVICE, arrived_at=at)


async def report_completed(session: AsyncSession, order_id: int, worker: Worker,
                           at: datetime) -> bool:
    """The service is done (an arrival never reported counts from now). COMMITs."""
    return await _report(session, order_id, worker, at, "completed",
                         (OrderStatus.ACCEPTED, OrderStatus.IN_SERVICE),
                         status=OrderStatus.COMPLETED, completed_at=at,
                         arrived_at=func.coalesce(WorkOrder.arrived_at, at))
