"""Which vendors may be offered an order, best first (优先派单).

A vendor is a candidate for an order when it is active, offers the order's service, covers
the elder's county, is open at the local time of the offer, has fewer open orders
(accepted or in service) than its ``max_open_orders``, has a phone (the first by id is the
dispatch line), is not excluded (already offered), and, where both the vendor and the elder
have coordinates, lies within the policy's maximum distance.

Candidates are ranked by a score of 0-100, a weighted mean of three parts, each 0-1:
quality (``rank_score`` / 100, or the policy's rank for new vendors), closeness
(``r / (r + d)`` for a distance of ``d`` km and the policy's reference distance ``r``) and
spare capacity (``1 - open_orders / max_open_orders``). One query fetches every candidate
with its load and dispatch line; hours, distance and score are computed in Python.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Row, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.geo import distance_km
from dispatch.models import (
    Elder,
    OrderStatus,
    Vendor,
    VendorPhone,
    VendorStatus,
    WorkOrder,
    vendor_coverage,
    vendor_services,
)

__all__ = [
    "OPEN_ORDER_STATUSES",
    "Candidate",
    "SelectionPolicy",
    "UnknownOrderError",
    "is_open",
    "vendor_candidates",
]

# Orders that occupy a vendor: accepted and not yet completed.
OPEN_ORDER_STATUSES = (OrderStatus.ACCEPTED, OrderStatus.IN_SERVICE)


class UnknownOrderError(LookupError):
    """The order to place does not exist."""


class SelectionPolicy(BaseModel):
    """How candidates are filtered and ranked; the defaults favour quality, then nearness."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank_weight: float = Field(
        default=0.6, ge=0, description="weight of the vendor's quality rank (rank_score)")
    distance_weight: float = Field(
        default=0.25, ge=0, description="weight of closeness to the elder")
    load_weight: float = Field(
        default=0.15, ge=0, description="weight of spare capacity (few open orders)")
    max_distance_km: float | None = Field(
        default=20.0, gt=0,
        description="farther vendors are skipped when both sides have coordinates; "
                    "None = no limit")
    distance_reference_km: float = Field(
        default=5.0, gt=0,
        description="distance at which closeness counts half; a vendor or elder without "
                    "coordinates is taken to be this far")
    require_open: bool = Field(
        default=True, description="offer only to vendors open at the local time of the offer")
    new_vendor_rank: float = Field(
        default=60.0, ge=0, le=100,
        description="rank given to vendors without a rank_score (new, or too little evidence)")
    tie_break: Literal["least_loaded", "nearest", "vendor_id"] = Field(
        default="least_loaded",
        description="order of candidates with equal scores; the vendor id settles the rest")

    @model_validator(mode="after")
    def _some_weight(self) -> SelectionPolicy:
        if self.rank_weight + self.distance_weight + self.load_weight <= 0:
            raise ValueError("at least one of the rank, distance and load weights must be > 0")
        return self

    def score(self, rank_score: float | None, distance: float | None, open_orders: int,
              max_open_orders: int) -> float:
        """The 0-100 score of a vendor (higher is offered first)."""
        rank = (self.new_vendor_rank if rank_score is None else rank_score) / 100.0
        reference = self.distance_reference_km
        closeness = reference / (reference + (reference if distance is None else distance))
        spare = 1.0 - open_orders / max_open_orders if max_open_orders > 0 else 0.0
        total = self.rank_weight + self.distance_weight + self.load_weight
        weighted = (self.rank_weight * min(max(rank, 0.0), 1.0)
                    + self.distance_weight * closeness
                    + self.load_weight * min(max(spare, 0.0), 1.0))
        return round(100.0 * weighted / total, 4)


@dataclass(frozen=True)
class Candidate:
    """A vendor that may be offered the order, with what its score was made of."""

    vendor_id: int
    name: str
    phone_e164: str  # the dispatch line: the vendor's first phone by id
    distance_km: float | None  # None when the vendor or the elder has no coordinates
    rank_score: float | None  # as stored; None for a new vendor
    open_orders: int
    score: float


def is_open(opens_at: time, closes_at: time, local: time) -> bool:
    """Whether local time ``local`` falls in the opening hours.

    ``closes_at`` earlier than ``opens_at`` is an overnight shift (22:00-06:00); equal
    times mean open 24 hours. Opening is inclusive, closing exclusive.
    """
    if opens_at == closes_at:
        return True
    if opens_at < closes_at:
        return opens_at <= local < closes_at
    return local >= opens_at or local < closes_at


_OPEN_ORDERS = (
    select(func.count(WorkOrder.id))
    .where(WorkOrder.vendor_id == Vendor.id, WorkOrder.status.in_(OPEN_ORDER_STATUSES))
    .correlate(Vendor)
    .scalar_subquery()
)
_DISPATCH_LINE = (
    select(VendorPhone.number_e164)
    .where(VendorPhone.vendor_id == Vendor.id)
    .order_by(VendorPhone.id)
    .limit(1)
    .correlate(Vendor)
    .scalar_subquery()
)


async def _order_place(session: AsyncSession, order_id: int) -> Row[Any]:
    row = (await session.execute(
        select(WorkOrder.service, Elder.county_code, Elder.latitude, Elder.longitude)
        .join(Elder, Elder.id == WorkOrder.elder_id)
        .where(WorkOrder.id == order_id)
    )).first()
    if row is None:
        raise UnknownOrderError(f"no work order with id {order_id}")
    return row


async def vendor_candidates(session: AsyncSession, *, order_id: int, at: datetime,
                            tz: ZoneInfo, policy: SelectionPolicy,
                            exclude: Collection[int] = ()) -> list[Candidate]:
    """Vendors that may be offered order ``order_id`` at ``at``, best first.

    Two queries whatever the number of vendors: the order's service and place, then the
    candidates with their open orders and dispatch line. An elder without a county gets
    no candidates. Raises :class:`UnknownOrderError` for a missing order and ValueError
    for a naive ``at``.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: give the time of the offer with its zone")
    service, county, elder_lat, elder_lon = await _order_place(session, order_id)
    if county is None:
        return []
    statement = (
        select(Vendor.id, Vendor.name, Vendor.opens_at, Vendor.closes_at, Vendor.rank_score,
               Vendor.latitude, Vendor.longitude, Vendor.max_open_orders,
               _OPEN_ORDERS.label("open_orders"), _DISPATCH_LINE.label("phone"))
        .join(vendor_services, and_(vendor_services.c.vendor_id == Vendor.id,
                                    vendor_services.c.service == service))
        .join(vendor_coverage, and_(vendor_coverage.c.vendor_id == Vendor.id,
                                    vendor_coverage.c.county_code == county))
        .where(Vendor.status == VendorStatus.ACTIVE,
               Vendor.max_open_orders > _OPEN_ORDERS,
               _DISPATCH_LINE.is_not(None))
    )
    if exclude:
        statement = statement.where(Vendor.id.not_in(sorted(set(exclude))))
    local = at.astimezone(tz).time().replace(tzinfo=None)
    candidates = []
    for row in await session.execute(statement):
        if policy.require_open and not is_open(row.opens_at, row.closes_at, local):
            continue
        distance = None
        if None not in (row.latitude, row.longitude, elder_lat, elder_lon):
            distance = distance_km(elder_lat, elder_lon, row.latitude, row.longitude)
            if policy.max_distance_km is not None and distance > policy.max_distance_km:
                continue
        candidates.append(Candidate(
            vendor_id=row.id, name=row.name, phone_e164=row.phone,
            distance_km=None if distance is None else round(distance, 3),
            rank_score=row.rank_score, open_orders=row.open_orders,
            score=policy.score(row.rank_score, distance, row.open_orders,
                               row.max_open_orders),
        ))
    candidates.sort(key=lambda c: (-c.score, _tie_break(policy, c), c.vendor_id))
    return candidates


def _tie_break(policy: SelectionPolicy, candidate: Candidate) -> float:
    if policy.tie_break == "least_loaded":
        return candidate.open_orders
    if policy.tie_break == "nearest":
        return float("inf") if candidate.distance_km is None else candidate.distance_km
    return 0.0
