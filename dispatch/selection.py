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
with its load and dispatch line, for any number of orders at once (``candidates_for``);
hours, distance and score are computed in Python.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.geo import distance_km
from dispatch.models import (
    Elder,
    OrderStatus,
    ServiceType,
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
    "OrderPlace",
    "SelectionPolicy",
    "UnknownOrderError",
    "candidates_for",
    "is_open",
    "order_places",
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


@dataclass(frozen=True)
class OrderPlace:
    """What choosing an order's vendors needs: its service and where the elder lives."""

    service: ServiceType
    county_code: str | None
    latitude: float | None
    longitude: float | None


async def order_places(session: AsyncSession, order_ids: Collection[int]
                       ) -> dict[int, OrderPlace]:
    """The place of each order found among ``order_ids`` (one query)."""
    rows = await session.execute(
        select(WorkOrder.id, WorkOrder.service, Elder.county_code, Elder.latitude,
               Elder.longitude)
        .join(Elder, Elder.id == WorkOrder.elder_id)
        .where(WorkOrder.id.in_(list(order_ids)))
    )
    return {row[0]: OrderPlace(*row[1:]) for row in rows}


async def vendor_candidates(session: AsyncSession, *, order_id: int, at: datetime,
                            tz: ZoneInfo, policy: SelectionPolicy,
                            exclude: Collection[int] = ()) -> list[Candidate]:
    """Vendors that may be offered order ``order_id`` at ``at``, best first.

    Raises :class:`UnknownOrderError` for a missing order and ValueError for a naive ``at``.
    """
    places = await order_places(session, [order_id])
    if order_id not in places:
        raise UnknownOrderError(f"no work order with id {order_id}")
    found = await candidates_for(session, places, at=at, tz=tz, policy=policy,
                                 exclude={order_id: exclude})
    return found[order_id]


async def candidates_for(session: AsyncSession, places: Mapping[int, OrderPlace], *,
                         at: datetime, tz: ZoneInfo, policy: SelectionPolicy,
                         exclude: Mapping[int, Collection[int]] | None = None,
                         most: int | None = None) -> dict[int, list[Candidate]]:
    """The ``most`` best candidates (all if None) of each order in ``places``, best first;
    ``exclude``: the vendors an order was offered already.

    One query whatever the number of orders and vendors: every vendor of the orders'
    services and counties, with its open orders and dispatch line. An elder without a
    county gets no candidates. Raises ValueError for a naive ``at``.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at!r}: give the time of the offer with its zone")
    wanted = {(place.service, place.county_code) for place in places.values()
              if place.county_code is not None}
    local = at.astimezone(tz).time().replace(tzinfo=None)
    vendors: dict[tuple[ServiceType, str], list[_Vendor]] = {pair: [] for pair in wanted}
    if wanted:
        statement = (
            select(vendor_services.c.service, vendor_coverage.c.county_code,
                   Vendor.id, Vendor.name, Vendor.opens_at, Vendor.closes_at,
                   Vendor.rank_score, Vendor.latitude, Vendor.longitude,
                   Vendor.max_open_orders, _OPEN_ORDERS.label("open_orders"),
                   _DISPATCH_LINE.label("phone"))
            .join(vendor_services, vendor_services.c.vendor_id == Vendor.id)
            .join(vendor_coverage, vendor_coverage.c.vendor_id == Vendor.id)
            .where(Vendor.status == VendorStatus.ACTIVE,
                   vendor_services.c.service.in_(sorted({s for s, _ in wanted})),
                   vendor_coverage.c.county_code.in_(sorted({c for _, c in wanted})),
                   Vendor.max_open_orders > _OPEN_ORDERS,
                   _DISPATCH_LINE.is_not(None))
        )
        for row in await session.execute(statement):
            (service, county, vendor_id, name, opens_at, closes_at, rank, latitude,
             longitude, max_open, open_orders, phone) = row
            if (service, county) in vendors and not (
                    policy.require_open and not is_open(opens_at, closes_at, local)):
                vendors[(service, county)].append(_Vendor(
                    vendor_id, name, rank, latitude, longitude, max_open, open_orders, phone))
    excluded = exclude or {}
    return {order_id: _ranked(vendors.get((place.service, place.county_code), []), place,
                              set(excluded.get(order_id, ())), policy, most)
            for order_id, place in places.items()}


class _Vendor(NamedTuple):
    """A candidate vendor's row, read once for every order that may go to it."""

    id: int
    name: str
    rank_score: float | None
    latitude: float | None
    longitude: float | None
    max_open_orders: int
    open_orders: int
    phone: str


def _ranked(vendors: list[_Vendor], place: OrderPlace, exclude: set[int],
            policy: SelectionPolicy, most: int | None) -> list[Candidate]:
    """The ``most`` best (all if None) of ``vendors`` not excluded and near enough."""
    scored = []
    located = place.latitude is not None and place.longitude is not None
    for vendor in vendors:
        if vendor.id in exclude:
            continue
        distance = None
        if located and vendor.latitude is not None and vendor.longitude is not None:
            distance = distance_km(place.latitude, place.longitude,  # type: ignore[arg-type]
                                   vendor.latitude, vendor.longitude)
            if policy.max_distance_km is not None and distance > policy.max_distance_km:
                continue
        score = policy.score(vendor.rank_score, distance, vendor.open_orders,
                             vendor.max_open_orders)
        scored.append((-score, _tie_break(policy, vendor.open_orders, distance), vendor.id,
                       distance, vendor))
    best = sorted(scored) if most is None else heapq.nsmallest(most, scored)
    return [Candidate(vendor_id=vendor.id, name=vendor.name, phone_e164=vendor.phone,
                      distance_km=None if distance is None else round(distance, 3),
                      rank_score=vendor.rank_score, open_orders=vendor.open_orders,
                      score=-negated)
            for negated, _tie, _id, distance, vendor in best]


def _tie_break(policy: SelectionPolicy, open_orders: int, distance: float | None) -> float:
    if policy.tie_break == "least_loaded":
        return open_orders
    if policy.tie_break == "nearest":
        return float("inf") if distance is None else distance
    return 0.0
