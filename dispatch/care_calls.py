"""Placing a round's caring calls: the first call when its window opens, a retry after an
unanswered one, and, when every try failed, a welfare check.

A round's calls are rows of ``outbound_calls`` (purpose ``care_call``), claimed and dialled
exactly once like every other outbound call. The elder's answer ends the round (``well``,
``help``, ``operator``, or ``heard`` for a greeting or reminder). An elder who called 12349
or pressed the handset since the round began is ``reached`` without another call. After the
last try, or when the next try would fall outside the allowed hours, a greeting, reminder
or companionship call is ``unreached``, and a check-in is ``escalated``: a welfare-check
emergency order (source ``care_check``) opens, which calls the
family through the existing escalation and puts the elder at the top of the operators'
worklist. The order carries the round as its unique business key (``care_round:<id>``), so
two engines escalating the same round open one order, and a crash between the two writes
is repaired by the next sweep without a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.care_plans import CareHours
from dispatch.models import (
    Call,
    CallPurpose,
    CareCampaign,
    CareKind,
    CarePlan,
    CareRound,
    Elder,
    OfferOutcome,
    OrderSource,
    OutboundCall,
    OutboundState,
    RoundState,
    ServiceType,
    WorkOrder,
)
from dispatch.offers import NextStep
from dispatch.orders import create_order
from dispatch.outbound import Attempt, attempts_of_round, finishing, new_attempt
from dispatch.quality import callback_number

CARE = CallPurpose.CARE_CALL
OPEN_STATES = (RoundState.DUE, RoundState.CALLING)
ESCALATING = "escalating"  # the round is escalated; its order is being opened
WELFARE_CHECK = "welfare_check"  # ... and its order is open
# a module constant: the call path's writer caches statements by identity
_WELFARE_OPENED = (update(CareRound)
                   .where(CareRound.id == bindparam("round_id"),
                          CareRound.outcome == ESCALATING)
                   .values(outcome=WELFARE_CHECK))
ANSWERS: dict[OfferOutcome, RoundState] = {
    OfferOutcome.WELL: RoundState.WELL, OfferOutcome.HELP: RoundState.HELP,
    OfferOutcome.OPERATOR: RoundState.OPERATOR, OfferOutcome.HEARD: RoundState.WELL,
}


@dataclass(frozen=True)
class CarePolicy:
    """How a round's calls are tried: ``tries`` calls in all, ``retry_s`` apart, within
    the allowed ``hours``."""

    retry_s: float
    tries: int
    hours: CareHours


@dataclass(frozen=True)
class RoundCall:
    """What the caring-call flow needs to know about the round of an answered attempt."""

    round_id: int
    elder_id: int
    kind: CareKind
    name: str
    gender: str | None  # "M", "F" or None
    language: str
    message: str | None  # a reminder's or a campaign's words
    state: RoundState


def requested_by(round_id: int) -> str:
    """The business key of a round's welfare-check order."""
    return f"care_round:{round_id}"


def inside_hours(at: datetime, hours: CareHours) -> bool:
    local = at.astimezone(hours.tz)
    return hours.start <= local.time() < hours.end


async def _reached_since(session: AsyncSession, elder_id: int, since: datetime) -> bool:
    """The elder called 12349 (a call record of theirs), or an order of theirs opened
    (a handset press), since ``since``."""
    called = exists().where(Call.elder_id == elder_id, Call.direction == "inbound",
                            Call.started_at >= since)
    ordered = exists().where(WorkOrder.elder_id == elder_id, WorkOrder.created_at >= since,
                             WorkOrder.source != OrderSource.CARE_CHECK)
    return bool(await session.scalar(select(or_(called, ordered))))


async def _end(session: AsyncSession, round_id: int, state: RoundState, at: datetime,
               outcome: str) -> bool:
    moved = await session.execute(
        update(CareRound).where(CareRound.id == round_id, CareRound.state.in_(OPEN_STATES))
        .values(state=state, finished_at=at, outcome=outcome[:32]))
    return moved.rowcount == 1


async def plan_next_round_call(session: AsyncSession, round_id: int, now: datetime,
                               policy: CarePolicy, not_before: datetime | None = None
                               ) -> NextStep:
    """The round's next step: its first call once the window opens, the next try after an
    unanswered one, ``reached``, or ``escalated`` (NextStep.escalated = "unreached"; the
    caller then opens the welfare check with :func:`open_welfare_check`). A call is due no
    earlier than ``not_before`` (a line promised to it may free sooner). COMMITs."""
    row = await session.get(CareRound, round_id)
    if row is None or row.state not in OPEN_STATES:
        return NextStep(escalated="unreached") if row is not None and \
            row.state is RoundState.ESCALATED and row.outcome == ESCALATING else NextStep()
    attempts = await attempts_of_round(session, round_id)
    if any(a.state not in (OutboundState.DONE, OutboundState.CANCELLED) for a in attempts):
        return NextStep()  # a call is on its way
    if attempts and attempts[-1].outcome in {o.value for o in ANSWERS}:
        return NextStep()  # the flow ends the round with the answer
    if await _reached_since(session, row.elder_id, row.due_at):
        await _end(session, round_id, RoundState.REACHED, now, "called_meanwhile")
        await session.commit()
        return NextStep()
    due = max(now, row.due_at, not_before or now)
    if attempts:
        due = max(due, now + timedelta(seconds=policy.retry_s))
    number = await callback_number(session, row.elder_id)
    if number is None or len(attempts) >= policy.tries or (
            attempts and not inside_hours(due, policy.hours)):
        why = "no_number" if number is None else (attempts[-1].outcome or "unanswered")
        if row.kind is not CareKind.CHECK_IN:  # only a silent check-in is an alarm
            await _end(session, round_id, RoundState.UNREACHED, now, why)
            await session.commit()
            return NextStep()
        return await _escalating(session, round_id, now, why)
    if not attempts and not inside_hours(due, policy.hours):
        return NextStep()  # the window's opening is inside the hours: not yet
    try:
        attempt_id = (await session.execute(new_attempt(
            purpose=CARE, order_id=None, round_id=round_id, seq=len(attempts) + 1,
            vendor_id=None, number_e164=number, tries=len(attempts) + 1, due_at=due,
        ))).scalar_one()
        moved = await session.execute(
            update(CareRound).where(CareRound.id == round_id,
                                    CareRound.state.in_(OPEN_STATES))
            .values(state=RoundState.CALLING, tries=len(attempts) + 1))
        if moved.rowcount != 1:  # ended meanwhile (its plan stopped): no call
            await session.rollback()
            return NextStep()
        await session.commit()
    except IntegrityError:  # another engine planned the same try
        await session.rollback()
        return NextStep()
    return NextStep(attempt_id=int(attempt_id), due_at=due)


async def _escalating(session: AsyncSession, round_id: int, now: datetime, why: str
                      ) -> NextStep:
    if not await _end(session, round_id, RoundState.ESCALATED, now, ESCALATING):
        await session.rollback()
        return NextStep()
    await session.commit()
    return NextStep(escalated=f"unreached:{why}"[:32])


async def open_welfare_check(session: AsyncSession, round_id: int, now: datetime
                             ) -> WorkOrder | None:
    """The welfare-check emergency order of an escalated round, opened once (None if the
    round is not escalating, or its order exists already). COMMITs."""
    row = await session.get(CareRound, round_id)
    if row is None or row.state is not RoundState.ESCALATED or row.outcome != ESCALATING:
        return None
    key = requested_by(round_id)
    elder_id = row.elder_id
    await session.rollback()  # create_order runs its own transaction
    try:
        return await create_order(
            session, elder_id=elder_id, service=ServiceType.EMERGENCY, source="care_check",
            call_uniqueid=None, requested_by=key, at=now, business_key=key,
            note="check-in call unanswered: welfare check",
            also=lambda _order_no: [(_WELFARE_OPENED, {"round_id": round_id})])
    except IntegrityError:  # another engine opened it first (the business key is unique)
        await session.rollback()
        await session.execute(_WELFARE_OPENED, {"round_id": round_id})
        await session.commit()
        return None


async def escalating_rounds(session: AsyncSession, limit: int = 500) -> list[int]:
    """Escalated rounds whose welfare check is not open yet (a crash between the writes)."""
    return list((await session.scalars(
        select(CareRound.id).where(CareRound.state == RoundState.ESCALATED,
                                   CareRound.outcome == ESCALATING).limit(limit))).all())


async def record_answer(session: AsyncSession, attempt: Attempt, outcome: OfferOutcome,
                        at: datetime) -> bool:
    """The elder's answer ends the attempt and its round, once. COMMITs."""
    assert attempt.round_id is not None
    moved = await session.execute(finishing(attempt.id, outcome, at))
    if moved.rowcount != 1:
        await session.rollback()
        return False
    await _end(session, attempt.round_id, ANSWERS[outcome], at, outcome.value)
    await session.commit()
    return True


async def round_call(session: AsyncSession, attempt_id: int) -> RoundCall | None:
    """The round behind an answered caring-call attempt, with the elder's name, language
    and the words to say; None if unknown."""
    row = (await session.execute(
        select(CareRound.id, CareRound.elder_id, CareRound.kind, Elder.name, Elder.gender,
               Elder.preferred_language, CarePlan.message, CareCampaign.message,
               CareRound.state)
        .select_from(CareRound)
        .join(Elder, Elder.id == CareRound.elder_id)
        .outerjoin(CarePlan, CarePlan.id == CareRound.plan_id)
        .outerjoin(CareCampaign, CareCampaign.id == CareRound.campaign_id)
        .where(CareRound.id == select(OutboundCall.round_id)
               .where(OutboundCall.id == attempt_id).scalar_subquery())
    )).first()
    if row is None:
        return None
    return RoundCall(round_id=row[0], elder_id=row[1], kind=row[2], name=row[3],
                     gender=row[4], language=row[5], message=row[6] or row[7], state=row[8])



