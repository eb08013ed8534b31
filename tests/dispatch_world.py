"""A predictable set of vendors for dispatch tests, on top of the generated city."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Any

from sqlalchemy import delete, insert, select, update

from dispatch.citygen import COUNTIES
from dispatch.db import make_sync_engine, write_transaction
from dispatch.models import (
    OrderEvent,
    OutboundCall,
    ServiceType,
    Vendor,
    VendorPhone,
    VendorWorker,
    WorkOrder,
    vendor_coverage,
    vendor_services,
)
from dispatch.phones import national


@dataclass(frozen=True)
class RankedVendor:
    id: int
    phone: str  # national digits, as the simulator's phone book knows it
    worker: str  # a worker's national number


def rank_vendors(db_url: str) -> list[RankedVendor]:
    """Make every vendor open round the clock, for every service and county, ranked by id.

    Vendor 1 ranks first, then 2, ... Coordinates are cleared so distance cannot reorder them.
    """
    engine = make_sync_engine(db_url)
    try:
        # reads, then writes while the engine runs: the write lock first (on SQLite a read
        # snapshot a background write overtook cannot become a write: "database is locked")
        with write_transaction(engine) as conn:
            ids = list(conn.scalars(select(Vendor.id).order_by(Vendor.id)))
            conn.execute(delete(vendor_services))
            conn.execute(delete(vendor_coverage))
            for rank, vendor_id in enumerate(ids):
                conn.execute(update(Vendor).where(Vendor.id == vendor_id).values(
                    status="active", opens_at=time(0, 0), closes_at=time(0, 0),
                    rank_score=99.0 - 10 * rank, latitude=None, longitude=None,
                    max_open_orders=50))
                conn.execute(insert(vendor_services), [
                    {"vendor_id": vendor_id, "service": s.value}
                    for s in ServiceType if s is not ServiceType.EMERGENCY])
                conn.execute(insert(vendor_coverage), [
                    {"vendor_id": vendor_id, "county_code": c.code} for c in COUNTIES])
            vendors = []
            for vendor_id in ids:
                phone = conn.scalar(select(VendorPhone.number_e164)
                                    .where(VendorPhone.vendor_id == vendor_id)
                                    .order_by(VendorPhone.id).limit(1))
                worker = conn.scalar(select(VendorWorker.number_e164)
                                     .where(VendorWorker.vendor_id == vendor_id)
                                     .order_by(VendorWorker.id).limit(1))
                vendors.append(RankedVendor(vendor_id, national(phone), national(worker)))
            return vendors
    finally:
        engine.dispose()


def order_row(db_url: str, order_no: str) -> Any:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(WorkOrder).where(WorkOrder.order_no == order_no)).one()
    finally:
        engine.dispose()


def attempts(db_url: str, order_id: int, purpose: str = "vendor_offer") -> list[Any]:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(
                select(OutboundCall).where(OutboundCall.order_id == order_id,
                                           OutboundCall.purpose == purpose)
                .order_by(OutboundCall.seq)).all())
    finally:
        engine.dispose()


def timeline(db_url: str, order_id: int) -> list[tuple[str, dict[str, Any] | None]]:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return [(k, d) for k, d in conn.execute(
                select(OrderEvent.kind, OrderEvent.detail)
                .where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))]
    finally:
        engine.dispose()
