"""The quality callback (回访): when to call the elder, ratings, and complaints.

Elders are called only within the allowed hours (local time); a call that would fall at night
waits for the morning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import (
    CallPurpose,
    Complaint,
    ElderPhone,
    OfferOutcome,
    OrderEvent,
    OrderStatus,
    OutboundState,
    PhoneKind,
    WorkOrder,
)
from dispatch.offers import NextStep
from dispatch.orders import order_event
from dispatch.outbound import Attempt, attempts_of, finishing, new_attempt

CALLBACK = CallPurpose.QUALITY_CALLBACK
COMPLAINT_MAX_RATING = 2
UNREACHED = "callback_unreached"


@dataclass(frozen=True)
class CallbackPolicy:
    delay_s: float
    retry_s: float
    tries: int
    allowed_from: time
    allowed_until: time
    tz: ZoneInfo


def next_allowed(at: datetime, policy: CallbackPolicy) -> datetime:
    """``at`` if it falls within the allowed hours (local time), else the next opening."""
    local = at.astimezone(policy.tz)
    opening = local.replace(hour=policy.allowed_from.hour, minute=policy.allowed_from.minute,
                            second=0, microsecond=0)
    closing = local.replace(hour=policy.allowed_until.hour,
                            minute=policy.allowed_until.minute, second=0, microsecond=0)
    if opening <= local < closing:
        return at
    if local >= closing:
        opening += timedelta(days=1)
    return opening.astimezone(at.tzinfo)


QUALITY_CALLBACK_KINDS = (PhoneKind.MOBILE, PhoneKind.LANDLINE, PhoneKind.HANDSET)


async def callback_number(session: AsyncSession, elder_id: int,
                          kinds: Sequence[PhoneKind] = QUALITY_CALLBACK_KINDS) -> str | None:
    """The elder's number to call back: the first of ``kinds`` the elder has (by default a
    mobile, else a landline, else the handset line)."""
    rank = case(*((ElderPhone.kind == kind, i) for i, kind in enumerate(kinds)),
                else_=len(kinds))
    return await session.scalar(
        select(ElderPhone.number_e164).where(ElderPhone.elder_id == elder_id)
        .order_by(rank, ElderPhone.id).limit(1)
    )


async def callback_numbers(session: AsyncSession, elder_ids: Sequence[int],
                           kinds: Sequence[PhoneKind] = QUALITY_CALLBACK_KINDS
                           ) -> dict[int, str]:
    """``callback_number`` of many elders in one query (those with none are left out)."""
    wanted = sorted(set(elder_ids))
    if not wanted:
        return {}
    rows = (await session.execute(
        select(ElderPhone.elder_id, ElderPhone.kind, ElderPhone.number_e164)
        .where(ElderPhone.elder_id.in_(wanted), ElderPhone.kind.in_(kinds))
        .order_by(ElderPhone.id)
    )).all()
    best: dict[int, tuple[int, str]] = {}
    for elder_id, kind, number in rows:
        rank = list(kinds).index(kind)
        if elder_id not in best or rank < best[elder_id][0]:
            best[elder_id] = (rank, number)
    return {elder_id: number for elder_id, (_rank, number) in best.items()}


async def plan_next_callback(session: AsyncSession, order_id: int, now: datetime,
                             policy: CallbackPolicy) -> NextStep:
    """Schedule the first or next callback of a completed order; record giving up. COMMITs."""
    order = (await session.execute(
        select(WorkOrder.id, WorkOrder.status, WorkOrder.elder_id, WorkOrder.completed_at,
               WorkOrder.rating).where(WorkOrder.id == order_id)
    )).first()
    if order is None or order.status is not OrderStatus.COMPLETED or order.rating is not None:
        return NextStep()
    attempts = await attempts_of(session, order_id, CALLBACK)
    if any(a.state not in (OutboundState.DONE, OutboundState.CANCELLED) for a in attempts):
        return NextStep()
    if not attempts:
        number = await callback_number(session, order.elder_id)
        if number is None:
            return await _give_up(session, order_id, now, "no_number")
        due = next_allowed((order.completed_at or now) + timedelta(seconds=policy.delay_s),
                           policy)
        return await _schedule(session, order_id, 1, number, 1, max(due, now))
    last = attempts[-1]
    if last.outcome == OfferOutcome.RATED:
        return NextStep()
    if last.tries >= policy.tries:
        return await _give_up(session, order_id, now, last.outcome or "unknown")
    due = next_allowed(now + timedelta(seconds=policy.retry_s), policy)
    return await _schedule(session, order_id, last.seq + 1, last.number_e164, last.tries + 1,
                           due)


async def _schedule(session: AsyncSession, order_id: int, seq: int, number: str, tries: int,
                    due: datetime) -> NextStep:
    try:
        attempt_id = (await session.execute(new_attempt(
            purpose=CALLBACK, order_id=order_id, seq=seq, vendor_id=None, number_e164=number,
            tries=tries, due_at=due,
        ))).scalar_one()
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return NextStep()
    return NextStep(attempt_id=int(attempt_id), due_at=due)


async def _give_up(session: AsyncSession, order_id: int, now: datetime, why: str) -> NextStep:
    already = await session.scalar(select(exists().where(
        OrderEvent.order_id == order_id, OrderEvent.kind == UNREACHED)))
    if not already:
        statement, params = order_event(order_id, UNREACHED, now, {"last_outcome": why})
        await session.execute(statement, params)
        await session.commit()
    return NextStep()


async def record_rating(session: AsyncSession, attempt: Attempt, rating: int, at: datetime
                        ) -> bool | None:
    """Store the elder's 1-5 rating; a 1 or 2 opens a complaint. COMMITs.

    Returns whether a complaint was opened, or None if the attempt was already settled.
    """
    if not 1 <= rating <= 5:
        raise ValueError(f"rating must be 1..5, got {rating}")
    moved = await session.execute(finishing(attempt.id, OfferOutcome.RATED, at))
    if moved.rowcount != 1:
        await session.rollback()
        return None
    vendor_id = await session.scalar(
        select(WorkOrder.vendor_id).where(WorkOrder.id == attempt.order_id))
    await session.execute(update(WorkOrder).where(WorkOrder.id == attempt.order_id)
                          .values(rating=rating))
    statement, params = order_event(attempt.order_id, OfferOutcome.RATED, at, {"rating": rating})
    await session.execute(statement, params)
    complaint = rating <= COMPLAINT_MAX_RATING
    if complaint:
        await session.execute(insert(Complaint).values(
            order_id=attempt.order_id, vendor_id=vendor_id, rating=rating, opened_at=at))
        statement, params = order_event(attempt.order_id, "complaint_opened", at,
                                        {"rating": rating, "vendor_id": vendor_id})
        await session.execute(statement, params)
    await session.commit()
    return complaint
