"""Offering an order to vendors: the next attempt, acceptance, and escalation to operators.

Every decision is derived from what the database holds (the order and its attempts), so any
engine can take the next step after any other one stopped, and a step taken twice is refused
by a conditional UPDATE or by the unique attempt number.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.db import insert_ignoring
from dispatch.models import (
    CallPurpose,
    Elder,
    OfferOutcome,
    OrderStatus,
    OutboundCall,
    OutboundState,
    ServiceType,
    WorkOrder,
)
from dispatch.orders import order_event
from dispatch.outbound import Attempt, attempts_of_orders, cancelling, finishing
from dispatch.regions import Place
from dispatch.retry_policy import Rule, decide
from dispatch.selection import SelectionPolicy, candidates_for, order_places

OFFER = CallPurpose.VENDOR_OFFER
OPEN_FOR_OFFERS = (OrderStatus.NEW, OrderStatus.DISPATCHING)


@dataclass(frozen=True)
class OfferPolicy:
    """The parts of the dispatch configuration that decide the next offer."""

    accept_within_s: float
    arrival_window_s: float
    retry: dict[str, Rule]
    jitter: float
    selection: SelectionPolicy
    tz: ZoneInfo


@dataclass(frozen=True)
class NextStep:
    """What ``plan_next`` did: scheduled an attempt, escalated, or nothing (not its turn)."""

    attempt_id: int | None = None
    due_at: datetime | None = None
    escalated: str | None = None  # the reason, when the order went to the operators


@dataclass(frozen=True)
class OfferDetails:
    """What the vendor hears: the service, the district and the arrival window."""

    attempt_id: int
    order_id: int
    order_no: str
    service: ServiceType
    county_code: str | None
    county_name: str | None
    arrival_minutes: int
    state: OutboundState
    vendor_id: int | None
    place: Place  # the elder's region


@dataclass(frozen=True)
class _Offer:
    """An attempt to schedule: this vendor at this number, its ``tries``-th time, at ``due_at``."""

    vendor_id: int | None
    number: str
    tries: int
    due_at: datetime


@dataclass(frozen=True)
class _Decision:
    """What an order needs next: nothing, an offer, escalation, or a vendor not yet tried."""

    seq: int = 0
    deadline: datetime | None = None
    offer: _Offer | None = None
    escalate: str | None = None
    tried: frozenset[int] | None = None  # set when the next vendor is to be chosen


_NOTHING = _Decision()


async def plan_next(session: AsyncSession, order_id: int, at: datetime, policy: OfferPolicy,
                    rng: random.Random) -> NextStep:
    """``plan_offers`` of one order."""
    return (await plan_offers(session, [order_id], at, policy, rng))[order_id]


async def plan_offers(session: AsyncSession, order_ids: Collection[int], at: datetime,
                      policy: OfferPolicy, rng: random.Random) -> dict[int, NextStep]:
    """Schedule each order's next offer (same vendor later, or the next vendor now), or
    escalate it; one transaction for them all, COMMITted, a few queries whatever their number.

    Does nothing for an order while an attempt of it is scheduled or in progress, or once it
    left dispatching; nor for one another engine planned meanwhile (its status moved, or its
    attempt's number taken first).
    """
    orders = {row.id: row for row in await session.execute(
        select(WorkOrder.id, WorkOrder.status, WorkOrder.service, WorkOrder.created_at,
               WorkOrder.accept_deadline).where(WorkOrder.id.in_(list(order_ids))))}
    attempts = await attempts_of_orders(session, list(orders), OFFER)
    decisions = {order_id: _decide(order, attempts[order_id], at, policy, rng)
                 for order_id, order in orders.items()}
    choosing = {order_id: d.tried for order_id, d in decisions.items() if d.tried is not None}
    if choosing:
        places = await order_places(session, choosing)
        candidates = await candidates_for(session, places, at=at, tz=policy.tz,
                                          policy=policy.selection, exclude=choosing, most=1)
        for order_id, tried in choosing.items():
            best = candidates.get(order_id, [])[:1]
            decisions[order_id] = replace(
                decisions[order_id], tried=None,
                offer=_Offer(best[0].vendor_id, best[0].phone_e164, 1, at) if best else None,
                escalate=None if best else "no_vendor_left" if tried else "no_vendor_available")
    steps = dict.fromkeys(order_ids, NextStep())
    escalating = {i: d.escalate for i, d in decisions.items() if d.escalate is not None}
    steps.update(await _escalate_many(session, escalating, at))
    offering = {i: d for i, d in decisions.items() if d.offer is not None}
    steps.update(await _schedule_many(session, offering, orders))
    await session.commit()
    return steps


def _decide(order: Any, attempts: list[Attempt], at: datetime, policy: OfferPolicy,
            rng: random.Random) -> _Decision:
    """The next step of one order from what is stored of it (no query)."""
    if order.status not in OPEN_FOR_OFFERS or order.service is ServiceType.EMERGENCY:
        return _NOTHING  # emergencies belong to the operators and the family escalation
    if any(a.state not in (OutboundState.DONE, OutboundState.CANCELLED) for a in attempts):
        return _NOTHING
    last = next((a for a in reversed(attempts) if a.state is OutboundState.DONE), None)
    if last is not None and last.outcome == OfferOutcome.ACCEPTED:
        return _NOTHING
    deadline = order.accept_deadline or order.created_at + timedelta(
        seconds=policy.accept_within_s)
    seq = (attempts[-1].seq if attempts else 0) + 1
    if last is not None:
        decision = decide(last.outcome or OfferOutcome.LOST, last.tries, policy.retry,
                          policy.jitter, rng)
        due_at = at + timedelta(seconds=decision.delay_s)
        if decision.retry_same and due_at < deadline:
            return _Decision(seq, deadline, offer=_Offer(last.vendor_id, last.number_e164,
                                                         last.tries + 1, due_at))
    if at >= deadline:
        return _Decision(seq, deadline, escalate="accept_deadline")
    return _Decision(seq, deadline, tried=frozenset(
        a.vendor_id for a in attempts if a.vendor_id is not None))


async def _schedule_many(session: AsyncSession, offering: Mapping[int, _Decision],
                         orders: Mapping[int, Any]) -> dict[int, NextStep]:
    """Insert the offers' attempts, new orders moved to dispatching first; an order whose
    move or attempt another engine made first is left to it."""
    if not offering:
        return {}
    new = {i: d.deadline for i, d in offering.items() if orders[i].status is OrderStatus.NEW}
    lost: set[int] = set()
    if new:
        moved = set(await session.scalars(
            update(WorkOrder)
            .where(WorkOrder.id.in_(list(new)), WorkOrder.status == OrderStatus.NEW)
            .values(status=OrderStatus.DISPATCHING,
                    accept_deadline=case(*((WorkOrder.id == order_id, literal(
                        deadline, WorkOrder.accept_deadline.type))
                        for order_id, deadline in new.items())))
            .returning(WorkOrder.id)
            .execution_options(synchronize_session=False)))
        lost = set(new) - moved
    rows = [{"purpose": OFFER, "order_id": i, "round_id": None, "seq": d.seq,
             "vendor_id": d.offer.vendor_id, "number_e164": d.offer.number,
             "tries": d.offer.tries, "state": OutboundState.SCHEDULED, "due_at": d.offer.due_at}
            for i, d in offering.items() if i not in lost and d.offer is not None]
    if not rows:
        return {}
    inserted = {order_id: attempt_id for attempt_id, order_id in await session.execute(
        insert_ignoring(OutboundCall.__table__, session.bind.dialect,
                        ("order_id", "purpose", "seq"))
        .values(rows).returning(OutboundCall.id, OutboundCall.order_id))}
    events = [order_event(row["order_id"], "offer_scheduled", row["due_at"],
                          {"vendor_id": row["vendor_id"], "seq": row["seq"],
                           "try": row["tries"]})
              for row in rows if row["order_id"] in inserted]
    if events:
        await session.execute(events[0][0], [params for _, params in events])
    return {order_id: NextStep(attempt_id=int(attempt_id),
                               due_at=offering[order_id].offer.due_at)  # type: ignore[union-attr]
            for order_id, attempt_id in inserted.items()}


async def escalate(session: AsyncSession, order_id: int, at: datetime, reason: str) -> NextStep:
    """Hand the order to the operators: no vendor accepted in time. COMMITs; once per order."""
    step = (await _escalate_many(session, {order_id: reason}, at)).get(order_id, NextStep())
    await session.commit()
    return step


async def _escalate_many(session: AsyncSession, reasons: Mapping[int, str], at: datetime
                         ) -> dict[int, NextStep]:
    """Hand orders to the operators, each once, with its reason on its timeline (in the
    caller's transaction)."""
    if not reasons:
        return {}
    moved = list(await session.scalars(
        update(WorkOrder)
        .where(WorkOrder.id.in_(list(reasons)), WorkOrder.status.in_(OPEN_FOR_OFFERS))
        .values(status=OrderStatus.ESCALATED)
        .returning(WorkOrder.id)
        .execution_options(synchronize_session=False)))
    if not moved:
        return {}
    await session.execute(cancelling(moved, OFFER, at))
    events = [order_event(order_id, "dispatch_escalated", at, {"reason": reasons[order_id]})
              for order_id in moved]
    await session.execute(events[0][0], [params for _, params in events])
    return {order_id: NextStep(escalated=reasons[order_id]) for order_id in moved}


async def accept(session: AsyncSession, attempt: Attempt, at: datetime,
                 arrival_window_s: float) -> bool:
    """The vendor pressed 1: the order is theirs. False if the attempt was already settled.

    An order escalated meanwhile is still accepted: the elder is better served by a vendor
    who said yes than by none; the timeline shows it came late.
    """
    moved = await session.execute(finishing(attempt.id, OfferOutcome.ACCEPTED, at))
    if moved.rowcount != 1:
        await session.rollback()
        return False
    await session.execute(
        update(WorkOrder)
        .where(WorkOrder.id == attempt.order_id,
               WorkOrder.status.in_((*OPEN_FOR_OFFERS, OrderStatus.ESCALATED)))
        .values(status=OrderStatus.ACCEPTED, vendor_id=attempt.vendor_id, accepted_at=at,
                arrive_deadline=at + timedelta(seconds=arrival_window_s))
    )
    await session.execute(cancelling(attempt.order_id, OFFER, at))
    statement, params = order_event(attempt.order_id, OfferOutcome.ACCEPTED, at,
                                    {"vendor_id": attempt.vendor_id, "attempt_id": attempt.id})
    await session.execute(statement, params)
    await session.commit()
    return True


async def record_outcome(session: AsyncSession, attempt: Attempt, outcome: OfferOutcome,
                         at: datetime,
                         reason_code: int | None = None) -> bool:
    """Record a non-accepting outcome once, with its event on the order timeline (a caring
    call has no order: its attempt row is its round's timeline). COMMITs."""
    moved = await session.execute(finishing(attempt.id, outcome, at, reason_code))
    if moved.rowcount != 1:
        await session.rollback()
        return False
    if attempt.order_id is None:
        await session.commit()
        return True
    statement, params = order_event(
        attempt.order_id, f"{attempt.purpose.value}_{outcome}"[:32], at,
        {"vendor_id": attempt.vendor_id, "attempt_id": attempt.id, "try": attempt.tries,
         "reason": reason_code},
    )
    await session.execute(statement, params)
    await session.commit()
    return True


async def offer_details(session: AsyncSession, attempt_id: int, arrival_window_s: float
                        ) -> OfferDetails | None:
    """What to tell the vendor who answered attempt ``attempt_id``; None if unknown."""
    row = (await session.execute(
        select(OutboundCall.id, WorkOrder.id, WorkOrder.order_no, WorkOrder.service,
               Elder.county_code, Elder.county_name, OutboundCall.state, OutboundCall.vendor_id,
               Elder.province_code, Elder.city_code)
        .join(WorkOrder, WorkOrder.id == OutboundCall.order_id)
        .join(Elder, Elder.id == WorkOrder.elder_id)
        .where(OutboundCall.id == attempt_id, OutboundCall.purpose == OFFER)
    )).first()
    if row is None:
        return None
    return OfferDetails(
        attempt_id=row[0], order_id=row[1], order_no=row[2] or "", service=row[3],
        county_code=row[4], county_name=row[5],
        arrival_minutes=max(1, round(arrival_window_s / 60)), state=row[6], vendor_id=row[7],
        place=Place(row[8], row[9], row[4]),
    )

