"""Real rows for the vendor tests: elders, vendors with services, coverage and phones,
orders with their progress, offer calls and complaints (Lanzhou coordinates)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import (
    CallPurpose,
    Complaint,
    Elder,
    OutboundCall,
    OutboundState,
    Vendor,
    VendorPhone,
    VendorStatus,
    WorkOrder,
    vendor_coverage,
    vendor_services,
)
from dispatch.orders import ServiceType, create_order

CHENGGUAN = "620102"
QILIHE = "620103"
CENTRE = (36.0573, 103.8343)  # 城关区
KM_NORTH = 1 / 111.2  # degrees of latitude per kilometre

_numbers = itertools.count(1)


def north_of_centre(km: float) -> tuple[float, float]:
    """Coordinates ``km`` kilometres due north of :data:`CENTRE`."""
    return CENTRE[0] + km * KM_NORTH, CENTRE[1]


def vendor_row(name: str, *, status: VendorStatus = VendorStatus.ACTIVE,
               opens: time = time(0, 0), closes: time = time(0, 0),
               rank: float | None = 80.0, km: float | None = 1.0,
               max_open: int = 20) -> dict[str, Any]:
    """A ``vendors`` row; open 24 h, ``km`` north of the centre (None: no coordinates)."""
    lat, lon = north_of_centre(km) if km is not None else (None, None)
    return {"name": name, "status": status, "opens_at": opens, "closes_at": closes,
            "rank_score": rank, "latitude": lat, "longitude": lon, "max_open_orders": max_open}


async def add_vendors(session: AsyncSession, rows: Sequence[dict[str, Any]], *,
                      services: Sequence[ServiceType] = (ServiceType.MEAL,),
                      counties: Sequence[str] = (CHENGGUAN,), phones: int = 1) -> list[int]:
    """Insert vendors (see :func:`vendor_row`) with services, coverage and phones."""
    ids = list(await session.scalars(insert(Vendor).returning(Vendor.id), list(rows)))
    links = [{"vendor_id": i, "service": s} for i in ids for s in services]
    if links:
        await session.execute(insert(vendor_services), links)
    cover = [{"vendor_id": i, "county_code": c} for i in ids for c in counties]
    if cover:
        await session.execute(insert(vendor_coverage), cover)
    lines = [{"vendor_id": i, "number_e164": f"+86931{next(_numbers):07d}", "label": "调度"}
             for i in ids for _ in range(phones)]
    if lines:
        await session.execute(insert(VendorPhone), lines)
    await session.commit()
    return ids


async def add_vendor(session: AsyncSession, name: str, *,
                     services: Sequence[ServiceType] = (ServiceType.MEAL,),
                     counties: Sequence[str] = (CHENGGUAN,), phones: int = 1,
                     **row: Any) -> int:
    """One vendor; keyword arguments as :func:`vendor_row`."""
    (vendor_id,) = await add_vendors(session, [vendor_row(name, **row)], services=services,
                                     counties=counties, phones=phones)
    return vendor_id


async def add_elder(session: AsyncSession, *, county: str | None = CHENGGUAN,
                    km: float | None = 0.0, created: datetime) -> int:
    lat, lon = north_of_centre(km) if km is not None else (None, None)
    elder = Elder(name="张秀英", county_code=county, latitude=lat, longitude=lon,
                  created_at=created)
    session.add(elder)
    await session.commit()
    return elder.id


async def add_order(session: AsyncSession, elder_id: int, at: datetime, *,
                    service: ServiceType = ServiceType.MEAL, **progress: Any) -> WorkOrder:
    """An order created at ``at`` through the real path, then moved on by ``progress``
    (status, vendor_id, accepted_at, arrive_deadline, arrived_at, completed_at, rating)."""
    order = await create_order(session, elder_id=elder_id, service=service, source="phone",
                               call_uniqueid=None, requested_by="elder", at=at)
    if progress:
        await session.execute(update(WorkOrder).where(WorkOrder.id == order.id)
                              .values(**progress))
        await session.commit()
    return order


async def add_offer(session: AsyncSession, elder_id: int, vendor_id: int,
                    outcomes: Sequence[str | None], finished: datetime) -> WorkOrder:
    """One order offered to one vendor: a call per outcome, one minute apart, the last
    finishing at ``finished``; an outcome of None is a call still scheduled."""
    order = await add_order(session, elder_id, finished - timedelta(hours=1))
    for seq, outcome in enumerate(outcomes, 1):
        at = finished - timedelta(minutes=len(outcomes) - seq)
        session.add(OutboundCall(
            purpose=CallPurpose.VENDOR_OFFER, order_id=order.id, seq=seq, vendor_id=vendor_id,
            number_e164="+869310000000", tries=seq,
            state=OutboundState.SCHEDULED if outcome is None else OutboundState.DONE,
            due_at=at - timedelta(seconds=40),
            finished_at=None if outcome is None else at, outcome=outcome))
    await session.commit()
    return order


async def add_complaint(session: AsyncSession, order_id: int, vendor_id: int,
                        opened: datetime, rating: int | None = 1) -> None:
    session.add(Complaint(order_id=order_id, vendor_id=vendor_id, rating=rating,
                          opened_at=opened))
    await session.commit()
