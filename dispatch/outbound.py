"""Outbound call attempts in the database: the record that makes every dial exactly-once.

An attempt is inserted ``scheduled``; an engine dials it only after its conditional UPDATE moved
it to ``dialing`` (one engine wins, whatever the number of engines or schedule copies). Each
later step (answered, an outcome) is again a conditional UPDATE from the states it may follow,
so a result reported twice (by the engine that dialled and by another that saw the same AMI
event) is recorded once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import CallPurpose, OfferOutcome, OutboundCall, OutboundState

ACTIVE_STATES = (OutboundState.DIALING, OutboundState.ANSWERED)
_CLAIM_LOCK = 12349  # PostgreSQL advisory lock: claims check the channel caps one at a time
_ROW_COLUMNS = (OutboundCall.id, OutboundCall.purpose, OutboundCall.order_id, OutboundCall.seq,
                OutboundCall.vendor_id, OutboundCall.number_e164, OutboundCall.tries,
                OutboundCall.state, OutboundCall.due_at, OutboundCall.outcome,
                OutboundCall.round_id)


@dataclass(frozen=True)
class Attempt:
    """One outbound call attempt as stored."""

    id: int
    purpose: CallPurpose
    order_id: int | None  # None for a caring call: it belongs to a round instead
    seq: int
    vendor_id: int | None
    number_e164: str
    tries: int
    state: OutboundState
    due_at: datetime
    outcome: str | None
    round_id: int | None = None

    @classmethod
    def of(cls, row: Sequence[Any]) -> Attempt:
        return cls(*row)


@dataclass(frozen=True)
class Claim:
    """The result of trying to claim an attempt: ``attempt`` when this engine must dial it."""

    attempt: Attempt | None = None
    refused: str | None = None  # "gone" (claimed or cancelled), "trunk_full", "vendor_busy"


def new_attempt(*, purpose: CallPurpose, order_id: int | None, seq: int,
                vendor_id: int | None, number_e164: str, tries: int, due_at: datetime,
                round_id: int | None = None) -> Any:
    """The INSERT of a scheduled attempt (run inside the caller's transaction)."""
    return insert(OutboundCall).values(
        purpose=purpose, order_id=order_id, round_id=round_id, seq=seq, vendor_id=vendor_id,
        number_e164=number_e164, tries=tries, state=OutboundState.SCHEDULED, due_at=due_at,
    ).returning(OutboundCall.id)


async def schedule(session: AsyncSession, **values: Any) -> int | None:
    """Insert a scheduled attempt and COMMIT; None if another engine inserted it first."""
    try:
        attempt_id = (await session.execute(new_attempt(**values))).scalar_one()
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return None
    return int(attempt_id)


async def attempts_of(session: AsyncSession, order_id: int, purpose: CallPurpose
                      ) -> list[Attempt]:
    """An order's attempts of one purpose, in order."""
    rows = await session.execute(
        select(*_ROW_COLUMNS)
        .where(OutboundCall.order_id == order_id, OutboundCall.purpose == purpose)
        .order_by(OutboundCall.seq)
    )
    return [Attempt.of(row) for row in rows]


async def attempts_of_round(session: AsyncSession, round_id: int) -> list[Attempt]:
    """A caring call round's attempts, in order."""
    rows = await session.execute(
        select(*_ROW_COLUMNS).where(OutboundCall.round_id == round_id)
        .order_by(OutboundCall.seq))
    return [Attempt.of(row) for row in rows]


async def get_attempt(session: AsyncSession, attempt_id: int) -> Attempt | None:
    row = (await session.execute(
        select(*_ROW_COLUMNS).where(OutboundCall.id == attempt_id)
    )).first()
    return Attempt.of(row) if row is not None else None


def on_line(now: datetime, longest_call: timedelta) -> ColumnElement[bool]:
    """Attempts holding a trunk line at ``now``: claimed, ringing or answered, or answered
    and finished but not hung up yet (the goodbye, a transfer to an operator): a line is
    free only once its channel hangs up. Should the hangup be missed, a finished call frees
    its line ``longest_call`` after its outcome."""
    return and_(OutboundCall.hung_up_at.is_(None),
                or_(OutboundCall.state.in_(ACTIVE_STATES),
                    and_(OutboundCall.finished_at > now - longest_call,
                         OutboundCall.answered_at.is_not(None))))


async def _on_line(session: AsyncSession, now: datetime, longest_call: timedelta,
                   *where: Any) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(OutboundCall)
        .where(on_line(now, longest_call), *where)
    ) or 0)


async def outbound_lines(session: AsyncSession, now: datetime, longest_call: timedelta) -> int:
    """Attempts on a trunk line now (see ``on_line``), every purpose."""
    return await _on_line(session, now, longest_call)


async def line_demand(session: AsyncSession, purpose: CallPurpose, now: datetime,
                      longest_call: timedelta) -> int:
    """Attempts of ``purpose`` on a line now or due and waiting for one: what a planner
    subtracts from its cap before it plans more calls."""
    return int(await session.scalar(
        select(func.count()).select_from(OutboundCall).where(
            OutboundCall.purpose == purpose,
            or_(on_line(now, longest_call),
                and_(OutboundCall.state == OutboundState.SCHEDULED,
                     OutboundCall.due_at <= now)))) or 0)


async def claim(session: AsyncSession, attempt_id: int, *, engine_id: str, at: datetime,
                longest_call: timedelta, trunk_channels: int, vendor_channels: int,
                reserve: Mapping[CallPurpose, int] | None = None,
                priority_lines: Callable[[], Awaitable[int]] | None = None,
                freeing: int | None = None) -> Claim:
    """Move a due attempt to ``dialing`` for this engine, within the channel caps; COMMIT.

    ``reserve``: lines some purposes leave free (caring calls, for the calls that matter
    more). ``priority_lines``: the emergency call-backs and family alerts on the trunk now
    (``ivr/trunk.py``). A priority call notes itself, then counts these rows; this claim
    commits its row, then counts the priority calls again: of two that race, one sees the
    other. Should the trunk then hold more calls than it has lines, the claim is undone.
    ``freeing``: an attempt whose channel has just hung up, handing its line to this one
    (``ivr/line_handover.py``): its hangup is stored in the same transaction, whatever the
    claim's fate, so no other claim sees that line free before this one has it.
    """
    async def priority() -> int:
        return await priority_lines() if priority_lines is not None else 0

    try:
        if session.bind.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                  {"key": _CLAIM_LOCK})
        if freeing is not None:
            await session.execute(_hanging_up(freeing, at))
        attempt = await get_attempt(session, attempt_id)
        lines = 0
        if attempt is None or attempt.state is not OutboundState.SCHEDULED:
            refused: str | None = "gone"
        else:
            lines = await _on_line(session, at, longest_call)
            refused = await _cap_reached(session, attempt, at, longest_call, lines,
                                         trunk_channels, vendor_channels,
                                         (reserve or {}).get(attempt.purpose, 0),
                                         await priority())
        if refused is None:
            moved = await session.execute(
                update(OutboundCall)
                .where(OutboundCall.id == attempt_id,
                       OutboundCall.state == OutboundState.SCHEDULED)
                .values(state=OutboundState.DIALING, claimed_by=engine_id[:64], claimed_at=at)
            )
            refused = None if moved.rowcount == 1 else "gone"
        if refused is not None or attempt is None:
            if freeing is not None:
                await session.commit()  # the hangup stands, claimed or not
            return Claim(refused=refused or "gone")
        await session.commit()
        if lines + 1 + await priority() > trunk_channels:  # a priority call came meanwhile
            await unclaim(session, attempt_id)
            return Claim(refused="trunk_full")
        return Claim(attempt=attempt)
    finally:
        if session.in_transaction():
            await session.rollback()


async def _cap_reached(session: AsyncSession, attempt: Attempt, at: datetime,
                       longest_call: timedelta, lines: int, trunk_channels: int,
                       vendor_channels: int, kept_free: int, priority: int) -> str | None:
    """Why ``attempt`` may not take a line now ("trunk_full", "vendor_busy"), or None;
    ``lines``: the attempts on a line now."""
    if lines + priority + kept_free >= trunk_channels:
        return "trunk_full"
    if attempt.vendor_id is not None and await _on_line(
        session, at, longest_call, OutboundCall.vendor_id == attempt.vendor_id
    ) >= vendor_channels:
        return "vendor_busy"
    return None


async def unclaim(session: AsyncSession, attempt_id: int) -> bool:
    """``dialing`` -> ``scheduled`` for an attempt whose Originate was never sent (the AMI
    link was down); COMMIT. False if it had moved on meanwhile."""
    moved = await session.execute(
        update(OutboundCall)
        .where(OutboundCall.id == attempt_id, OutboundCall.state == OutboundState.DIALING)
        .values(state=OutboundState.SCHEDULED, claimed_by=None, claimed_at=None)
    )
    await session.commit()
    return moved.rowcount == 1


async def mark_answered(session: AsyncSession, attempt_id: int, at: datetime,
                        uniqueid: str | None) -> bool:
    """``dialing`` -> ``answered`` on the channel ``uniqueid``; COMMIT. False if it was
    already past that."""
    moved = await session.execute(
        update(OutboundCall)
        .where(OutboundCall.id == attempt_id, OutboundCall.state == OutboundState.DIALING)
        .values(state=OutboundState.ANSWERED, answered_at=at,
                uniqueid=uniqueid[:64] if uniqueid else None)
    )
    await session.commit()
    return moved.rowcount == 1


def _hanging_up(attempt_id: int, at: datetime) -> Any:
    return (update(OutboundCall)
            .where(OutboundCall.id == attempt_id, OutboundCall.hung_up_at.is_(None))
            .values(hung_up_at=at))


async def mark_hung_up(session: AsyncSession, attempt_id: int, at: datetime) -> bool:
    """The attempt's channel hung up: its trunk line is free, whatever its state; COMMIT.
    False if that was known already."""
    moved = await session.execute(_hanging_up(attempt_id, at))
    await session.commit()
    return moved.rowcount == 1


def finishing(attempt_id: int, outcome: OfferOutcome, at: datetime, reason_code: int | None = None
              ) -> Any:
    """The conditional UPDATE that records an outcome, for use inside a larger transaction."""
    return (
        update(OutboundCall)
        .where(OutboundCall.id == attempt_id, OutboundCall.state.in_(ACTIVE_STATES))
        .values(state=OutboundState.DONE, outcome=outcome.value, finished_at=at,
                reason_code=reason_code)
    )


async def finish(session: AsyncSession, attempt_id: int, outcome: OfferOutcome, at: datetime,
                 reason_code: int | None = None) -> bool:
    """Record an outcome once and COMMIT; False if one was already recorded."""
    moved = await session.execute(finishing(attempt_id, outcome, at, reason_code))
    await session.commit()
    return moved.rowcount == 1


async def due(session: AsyncSession, until: datetime, limit: int = 500
              ) -> list[tuple[int, datetime]]:
    """Scheduled attempts due by ``until`` (the database's copy of the schedule)."""
    rows = await session.execute(
        select(OutboundCall.id, OutboundCall.due_at)
        .where(OutboundCall.state == OutboundState.SCHEDULED, OutboundCall.due_at <= until)
        .order_by(OutboundCall.due_at).limit(limit)
    )
    return [(int(i), d) for i, d in rows]


async def overdue_active(session: AsyncSession, *, dialing_before: datetime,
                         answered_before: datetime) -> list[Attempt]:
    """Attempts whose engine never reported an outcome in time (crashed, or its link died)."""
    rows = await session.execute(
        select(*_ROW_COLUMNS).where(
            ((OutboundCall.state == OutboundState.DIALING)
             & (OutboundCall.claimed_at < dialing_before))
            | ((OutboundCall.state == OutboundState.ANSWERED)
               & (OutboundCall.answered_at < answered_before))
        ).limit(500)
    )
    return [Attempt.of(row) for row in rows]


def cancelling(order_id: int, purpose: CallPurpose, at: datetime) -> Any:
    """The UPDATE that cancels an order's attempts not yet dialled."""
    return (
        update(OutboundCall)
        .where(OutboundCall.order_id == order_id, OutboundCall.purpose == purpose,
               OutboundCall.state == OutboundState.SCHEDULED)
        .values(state=OutboundState.CANCELLED, finished_at=at)
    )
