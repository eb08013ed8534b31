"""Offering an order to vendors: the next attempt, acceptance, and escalation to operators.

Every decision is derived from what the database holds (the order and its attempts), so any
engine can take the next step after any other one stopped, and a step taken twice is refused
by a conditional UPDATE or by the unique attempt number.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

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
from dispatch.outbound import Attempt, attempts_of, cancelling, finishing, new_attempt
from dispatch.regions import Place
from dispatch.retry_policy import Rule, decide
from dispatch.selection import SelectionPolicy, vendor_candidates

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


async def _order(session: AsyncSession, order_id: int) -> Any:
    return (await session.execute(
        select(WorkOrder.id, WorkOrder.status, WorkOrder.service, WorkOrder.created_at,
               WorkOrder.accept_deadline).where(WorkOrder.id == order_id)
    )).first()


async def plan_next(session: AsyncSession, order_id: int, at: datetime, policy: OfferPolicy,
                    rng: random.Random) -> NextStep:
    """Schedule the order's next offer (same vendor later, or the next vendor now), or escalate.

    Does nothing while an attempt is scheduled or in progress, or once the order left
    dispatching. Commits what it wrote.
    """
    order = await _order(session, order_id)
    if order is None or order.status not in OPEN_FOR_OFFERS:
        return NextStep()
    if order.service is ServiceType.EMERGENCY:
        return NextStep()  # emergencies belong to the operators and the family escalation
    deadline = order.accept_deadline or order.created_at + timedelta(
        seconds=policy.accept_within_s)
    attempts = await attempts_of(session, order_id, OFFER)
    if any(a.state not in (OutboundState.DONE, OutboundState.CANCELLED) for a in attempts):
        return NextStep()
    last = next((a for a in reversed(attempts) if a.state is OutboundState.DONE), None)
    if last is not None and last.outcome == OfferOutcome.ACCEPTED:
        return NextStep()
    seq = (attempts[-1].seq if attempts else 0) + 1
    if last is not None:
        decision = decide(last.outcome or OfferOutcome.LOST, last.tries, policy.retry,
                          policy.jitter, rng)
        due_at = at + timedelta(seconds=decision.delay_s)
        if decision.retry_same and due_at < deadline:
            return await _schedule(session, order, seq, last.vendor_id, last.number_e164,
                                   last.tries + 1, due_at, deadline)
    if at >= deadline:
        return await escalate(session, order_id, at, "accept_deadline")
    tried = {a.vendor_id for a in attempts if a.vendor_id is not None}
    candidates = await vendor_candidates(session, order_id=order_id, at=at, tz=policy.tz,
                                         policy=policy.selection, exclude=tried)
    if not candidates:
        return await escalate(session, order_id, at,
                              "no_vendor_left" if tried else "no_vendor_available")
    best = candidates[0]
    return await _schedule(session, order, seq, best.vendor_id, best.phone_e164, 1, at, deadline)


async def _schedule(session: AsyncSession, order: Any, seq: int, vendor_id: int | None,
                    number: str, tries: int, due_at: datetime, deadline: datetime) -> NextStep:
    try:
        if order.status is OrderStatus.NEW:
            moved = await session.execute(
                update(WorkOrder)
                .where(WorkOrder.id == order.id, WorkOrder.status == OrderStatus.NEW)
                .values(status=OrderStatus.DISPATCHING, accept_deadline=deadline)
            )
            if moved.rowcount != 1:
                await session.rollback()
                return NextStep()
        attempt_id = (await session.execute(new_attempt(
            purpose=OFFER, order_id=order.id, seq=seq, vendor_id=vendor_id, number_e164=number,
            tries=tries, due_at=due_at,
        ))).scalar_one()
        statement, params = order_event(order.id, "offer_scheduled", due_at,
                                        {"vendor_id": vendor_id, "seq": seq, "try": tries})
        await session.execute(statement, params)
        await session.commit()
    except IntegrityError:
        await session.rollback()  # another engine scheduled this very attempt first
        return NextStep()
    return NextStep(attempt_id=int(attempt_id), due_at=due_at)


async def escalate(session: AsyncSession, order_id: int, at: datetime, reason: str) -> NextStep:
    """Hand the order to the operators: no vendor accepted in time. COMMITs; once per order."""
    moved = await session.execute(
        update(WorkOrder)
        .where(WorkOrder.id == order_id, WorkOrder.status.in_(OPEN_FOR_OFFERS))
        .values(status=OrderStatus.ESCALATED)
    )
    if moved.rowcount != 1:
        await session.rollback()
        return NextStep()
    await session.execute(cancelling(order_id, OFFER, at))
    statement, params = order_event(order_id, "dispatch_escalated", at, {"reason": reason})
    await session.execute(statement, params)
    await session.commit()
    return NextStep(escalated=reason)


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

