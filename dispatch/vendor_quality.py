"""Vendors' service quality over a window, the 0-100 score, and ``vendors.rank_score``.

What counts, per vendor, over ``[since, until)``:

* **Offers**: an offer is one order offered to one vendor, however many calls (retries) it
  took; the calls counted are vendor-offer calls with an outcome, by ``finished_at``
  (``due_at`` if unset). An offer is *accepted* if any of its calls was; else *declined*
  (key 2) if any was; else *unanswered* if any call reached the vendor's line without a
  decision (``no_answer``, ``busy``, ``no_key``, ``hangup``); else *not counted*: only
  outcomes that are not the vendor's doing — ``congestion`` and ``failed`` (trunk),
  ``lost`` (the engine died) or any other value.
* **Acceptance rate** = accepted / (accepted + declined + unanswered) offers.
* **On-time rate**: among orders the vendor accepted whose ``arrive_deadline`` falls in the
  window (so has passed), excluding cancelled orders, the share with ``arrived_at`` at or
  before the deadline; never arriving is late.
* **Ratings**: the 1-5 ratings of the vendor's orders completed in the window (by
  ``completed_at``, else ``accepted_at``, else ``created_at``): count and mean.
* **Jobs**: orders the vendor accepted in the window (by ``accepted_at``).
* **Complaints**: complaints against the vendor opened in the window, with order numbers.

The score (:func:`quality_score`) is a weighted mean of the parts that have data —
acceptance rate, on-time rate, (mean rating - 1) / 4, and 1 - complaints / jobs (capped) —
times 100. A vendor with fewer decided offers (accepted + declined + unanswered) than
``min_decided_offers`` gets no score and is treated as new by selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import (
    CallPurpose,
    Complaint,
    OfferOutcome,
    OrderStatus,
    OutboundCall,
    Vendor,
    VendorStatus,
    WorkOrder,
)

__all__ = [
    "ACCEPTED",
    "DECLINED",
    "NOT_COUNTED",
    "UNANSWERED",
    "QualityRules",
    "VendorFigures",
    "quality_score",
    "refresh_rank_scores",
    "vendor_figures",
]

ACCEPTED = OfferOutcome.ACCEPTED
DECLINED = OfferOutcome.DECLINED
UNANSWERED = frozenset({OfferOutcome.NO_ANSWER, OfferOutcome.BUSY, OfferOutcome.NO_KEY,
                        OfferOutcome.HANGUP, OfferOutcome.REJECTED})
NOT_COUNTED = frozenset({OfferOutcome.CONGESTION, OfferOutcome.FAILED, OfferOutcome.LOST,
                         OfferOutcome.BAD_NUMBER})


class QualityRules(BaseModel):
    """Weights of the score's parts and the minimum evidence for a score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_decided_offers: int = Field(
        default=5, ge=1, description="fewer decided offers in the window: no score (new)")
    acceptance_weight: float = Field(default=0.35, ge=0, description="weight of acceptance")
    on_time_weight: float = Field(default=0.25, ge=0, description="weight of on-time arrival")
    rating_weight: float = Field(default=0.25, ge=0, description="weight of the mean rating")
    complaint_weight: float = Field(
        default=0.15, ge=0, description="weight of complaint-free jobs")

    @model_validator(mode="after")
    def _some_weight(self) -> QualityRules:
        if (self.acceptance_weight + self.on_time_weight + self.rating_weight
                + self.complaint_weight) <= 0:
            raise ValueError("at least one weight must be > 0")
        return self


@dataclass
class VendorFigures:
    """One vendor's figures over a window (see the module docstring for each definition)."""

    vendor_id: int
    calls: int = 0  # offer calls with an outcome
    accepted: int = 0  # offers, as the module docstring classes them
    declined: int = 0
    unanswered: int = 0
    not_counted: int = 0
    due_arrivals: int = 0
    on_time: int = 0
    late_orders: list[str] = field(default_factory=list)  # order numbers
    ratings: int = 0
    rating_mean: float | None = None
    jobs: int = 0
    complaint_orders: list[str] = field(default_factory=list)  # order numbers

    @property
    def decided(self) -> int:
        """Offers that reached a decision or went unanswered: the acceptance denominator."""
        return self.accepted + self.declined + self.unanswered

    @property
    def offers(self) -> int:
        return self.decided + self.not_counted

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.decided if self.decided else None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.due_arrivals if self.due_arrivals else None

    @property
    def late(self) -> int:
        return self.due_arrivals - self.on_time

    @property
    def complaints(self) -> int:
        return len(self.complaint_orders)


def quality_score(figures: VendorFigures, rules: QualityRules) -> float | None:
    """The 0-100 score (one decimal), or None with too little evidence."""
    if figures.decided < rules.min_decided_offers:
        return None
    parts: list[tuple[float, float | None]] = [
        (rules.acceptance_weight, figures.acceptance_rate),
        (rules.on_time_weight, figures.on_time_rate),
        (rules.rating_weight,
         None if figures.rating_mean is None else (figures.rating_mean - 1.0) / 4.0),
    ]
    if figures.jobs or figures.complaints:
        share = figures.complaints / figures.jobs if figures.jobs else 1.0
        parts.append((rules.complaint_weight, 1.0 - min(1.0, share)))
    present = [(weight, value) for weight, value in parts if value is not None and weight > 0]
    total = sum(weight for weight, _ in present)
    if total <= 0:
        return None
    return round(100.0 * sum(weight * value for weight, value in present) / total, 1)


# An offer's class is the best of its calls' classes: accepted > declined > unanswered.
_CLASS = case((OutboundCall.outcome == ACCEPTED, 3), (OutboundCall.outcome == DECLINED, 2),
              (OutboundCall.outcome.in_(sorted(UNANSWERED)), 1), else_=0)
_CLASS_FIELDS = {3: "accepted", 2: "declined", 1: "unanswered", 0: "not_counted"}


def _within(column: ColumnElement[datetime], since: datetime,
            until: datetime) -> ColumnElement[bool]:
    return and_(column >= since, column < until)


async def vendor_figures(session: AsyncSession, *, since: datetime,
                         until: datetime) -> dict[int, VendorFigures]:
    """Figures of every vendor with activity in ``[since, until)``, by vendor id.

    Five queries whatever the number of vendors or orders: three aggregate by vendor, and
    the late arrivals and complaints come back as order numbers.
    """
    if until <= since:
        raise ValueError(f"empty window: {since} to {until}")
    figures: dict[int, VendorFigures] = {}

    def of(vendor_id: int) -> VendorFigures:
        return figures.setdefault(vendor_id, VendorFigures(vendor_id))

    offered_at = func.coalesce(OutboundCall.finished_at, OutboundCall.due_at)
    offers = (
        select(OutboundCall.vendor_id, func.max(_CLASS).label("class_"),
               func.count().label("calls"))
        .where(OutboundCall.purpose == CallPurpose.VENDOR_OFFER,
               OutboundCall.vendor_id.is_not(None), OutboundCall.outcome.is_not(None),
               _within(offered_at, since, until))
        .group_by(OutboundCall.vendor_id, OutboundCall.order_id)
        .subquery()
    )
    for vendor_id, class_, count, calls in await session.execute(
        select(offers.c.vendor_id, offers.c.class_, func.count(), func.sum(offers.c.calls))
        .group_by(offers.c.vendor_id, offers.c.class_)
    ):
        vendor = of(vendor_id)
        vendor.calls += int(calls)
        setattr(vendor, _CLASS_FIELDS[class_], getattr(vendor, _CLASS_FIELDS[class_]) + count)

    on_time = WorkOrder.arrived_at <= WorkOrder.arrive_deadline
    due = [WorkOrder.vendor_id.is_not(None), WorkOrder.accepted_at.is_not(None),
           WorkOrder.status != OrderStatus.CANCELLED,
           _within(WorkOrder.arrive_deadline, since, until)]
    for vendor_id, count, punctual in await session.execute(
        select(WorkOrder.vendor_id, func.count(), func.sum(case((on_time, 1), else_=0)))
        .where(*due).group_by(WorkOrder.vendor_id)
    ):
        of(vendor_id).due_arrivals, of(vendor_id).on_time = count, int(punctual or 0)
    for vendor_id, order_no in await session.execute(
        select(WorkOrder.vendor_id, WorkOrder.order_no)
        .where(*due, or_(WorkOrder.arrived_at.is_(None),
                         WorkOrder.arrived_at > WorkOrder.arrive_deadline))
        .order_by(WorkOrder.vendor_id, WorkOrder.arrive_deadline, WorkOrder.id)
    ):
        of(vendor_id).late_orders.append(order_no)

    done_at = func.coalesce(WorkOrder.completed_at, WorkOrder.accepted_at, WorkOrder.created_at)
    rated = and_(WorkOrder.rating.is_not(None), _within(done_at, since, until))
    accepted = _within(WorkOrder.accepted_at, since, until)
    for vendor_id, ratings, mean, jobs in await session.execute(
        select(WorkOrder.vendor_id,
               func.count(case((rated, WorkOrder.rating))),
               func.avg(case((rated, WorkOrder.rating))),
               func.count(case((accepted, WorkOrder.id))))
        .where(WorkOrder.vendor_id.is_not(None), or_(rated, accepted))
        .group_by(WorkOrder.vendor_id)
    ):
        vendor = of(vendor_id)
        vendor.ratings, vendor.jobs = ratings, jobs
        vendor.rating_mean = None if mean is None else round(float(mean), 2)

    for vendor_id, order_no in await session.execute(
        select(Complaint.vendor_id, WorkOrder.order_no)
        .join(WorkOrder, WorkOrder.id == Complaint.order_id)
        .where(Complaint.vendor_id.is_not(None), _within(Complaint.opened_at, since, until))
        .order_by(Complaint.vendor_id, Complaint.opened_at, Complaint.id)
    ):
        of(vendor_id).complaint_orders.append(order_no)
    return figures


async def refresh_rank_scores(session: AsyncSession, *, at: datetime, window_days: int = 30,
                              rules: QualityRules | None = None) -> int:
    """Write every vendor's score over the ``window_days`` ending at ``at`` into
    ``vendors.rank_score`` (NULL with too little evidence), commit, and return how many
    vendors now hold a score. Removed vendors are left as they are."""
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    rules = rules or QualityRules()
    figures = await vendor_figures(session, since=at - timedelta(days=window_days), until=at)
    vendor_ids = list(await session.scalars(
        select(Vendor.id).where(Vendor.status != VendorStatus.REMOVED)))
    scores = [{"id": vendor_id,
               "rank_score": quality_score(figures.get(vendor_id, VendorFigures(vendor_id)),
                                           rules)}
              for vendor_id in vendor_ids]
    if scores:
        await session.execute(update(Vendor), scores)
    await session.commit()
    return sum(1 for row in scores if row["rank_score"] is not None)
