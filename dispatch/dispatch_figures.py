"""Dispatch figures for a set of orders: offers, acceptance, arrival, ratings, escalations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection

from dispatch.models import (
    CallPurpose,
    Complaint,
    OfferOutcome,
    OrderEvent,
    OrderStatus,
    OutboundCall,
    ServiceType,
    WorkOrder,
)
from dispatch.stats import percentile

ALERT_KINDS = ("late_acceptance", "late_arrival", "completion_unconfirmed")


@dataclass
class DispatchFigures:
    orders: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    offer_outcomes: Counter[str] = field(default_factory=Counter)
    escalations: Counter[str] = field(default_factory=Counter)
    to_acceptance_s: list[float] = field(default_factory=list)
    arrived: int = 0
    arrived_on_time: int = 0
    ratings: Counter[int] = field(default_factory=Counter)
    complaints: int = 0
    callbacks_unreached: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    unresolved: list[str] = field(default_factory=list)  # neither accepted nor escalated

    def percentile(self, q: int) -> float:
        return percentile(self.to_acceptance_s, q)

    @property
    def on_time_percent(self) -> float:
        return 100.0 * self.arrived_on_time / self.arrived if self.arrived else float("nan")


def dispatch_figures(conn: Connection, order_ids: Collection[int] | None = None
                     ) -> DispatchFigures:
    """Figures over the given orders (all non-emergency orders when None)."""
    where = [WorkOrder.service != ServiceType.EMERGENCY]
    if order_ids is not None:
        where.append(WorkOrder.id.in_(list(order_ids)))
    figures = DispatchFigures()
    orders = list(conn.execute(select(WorkOrder).where(*where)))
    ids = [order.id for order in orders]
    figures.orders = len(orders)
    accepted_events = {row.order_id for row in conn.execute(
        select(OrderEvent.order_id).where(OrderEvent.kind == OfferOutcome.ACCEPTED,
                                          OrderEvent.order_id.in_(ids)))}
    for order in orders:
        figures.statuses[str(order.status)] += 1
        if order.accepted_at is not None:
            figures.to_acceptance_s.append((order.accepted_at - order.created_at).total_seconds())
        if order.arrived_at is not None and order.arrive_deadline is not None:
            figures.arrived += 1
            figures.arrived_on_time += order.arrived_at <= order.arrive_deadline
        if order.rating is not None:
            figures.ratings[order.rating] += 1
        resolved = order.id in accepted_events or order.status == OrderStatus.ESCALATED
        if not resolved:
            figures.unresolved.append(f"{order.order_no} ({order.status})")
    for outcome, in conn.execute(select(OutboundCall.outcome).where(
            OutboundCall.purpose == CallPurpose.VENDOR_OFFER, OutboundCall.order_id.in_(ids))):
        figures.offer_outcomes[outcome or "pending"] += 1
    for kind, detail in conn.execute(select(OrderEvent.kind, OrderEvent.detail).where(
            OrderEvent.order_id.in_(ids),
            OrderEvent.kind.in_(("dispatch_escalated", "callback_unreached", *ALERT_KINDS)))):
        if kind == "dispatch_escalated":
            figures.escalations[(detail or {}).get("reason", "?")] += 1
        elif kind == "callback_unreached":
            figures.callbacks_unreached += 1
        else:
            figures.alerts[kind] += 1
    figures.complaints = len(list(conn.execute(
        select(Complaint.id).where(Complaint.order_id.in_(ids)))))
    return figures
