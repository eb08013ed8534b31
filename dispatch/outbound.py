"""Outbound call attempts in the database: the record that makes every dial exactly-once.

An attempt is inserted ``scheduled``; an engine dials it only after its conditional UPDATE moved
it to ``dialing`` (one engine wins, whatever the number of engines or schedule copies). Each
later step (answered, an outcome) is again a conditional UPDATE from the states it may follow,
so a result reported twice (by the engine that dialled and by another that saw the same AMI
event) is recorded once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
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
    return (await attempts_of_orders(session, [order_id], purpose))[order_id]


async def attempts_of_orders(session: AsyncSession, order_ids: Collection[int],
                             purpose: CallPurpose) -> dict[int, list[Attempt]]:
    """Each order's attempts of one purpose, in order (one query for them all)."""
    found: dict[int, list[Attempt]] = {order_id: [] for order_id in order_ids}
    rows = await session.execute(
        select(*_ROW_COLUMNS)
        .where(OutboundCall.order_id.in_(list(found)), OutboundCall.purpose == purpose)
        .order_by(OutboundCall.order_id, OutboundCall.seq)
    )
    for row in rows:
        attempt = Attempt.of(row)
        found[attempt.order_id].append(attempt)  # type: ignore[index]
    return found


async def attempts_of_round(session: AsyncSession, round_id: int) -> list[Attempt]:
    """A caring call round's attempts, in order."""
    rows = await session.execute(
        select(*_ROW_COLUMNS).where(OutboundCall.round_id == round_id)
        .order_by(OutboundCall.seq))
    return [Attempt.of(row) for row in rows]


async def get_attempt(session: AsyncSession, attempt_id: int) -> Attempt | None:
    found = await _get_attempts(session, [attempt_id])
    return found[0] if found else None


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


@dataclass(frozen=True)
class Caps:
    """The channel caps a claim respects: the trunk's lines, each vendor's, and the lines
    some purposes leave free (caring calls, for the calls that matter more)."""

    longest_call: timedelta
    trunk_channels: int
    vendor_channels: int
    reserve: Mapping[CallPurpose, int] = field(default_factory=dict)


async def claim(session: AsyncSession, attempt_id: int, *, engine_id: str, at: datetime,
                caps: Caps, priority_lines: Callable[[], Awaitable[int]] | None = None,
                freeing: int | None = None) -> Claim:
    """``claim_many`` of one attempt."""
    return (await claim_many(session, [attempt_id], engine_id=engine_id, at=at, caps=caps,
                             priority_lines=priority_lines, freeing=freeing))[attempt_id]


async def claim_many(session: AsyncSession, attempt_ids: Sequence[int], *, engine_id: str,
                     at: datetime, caps: Caps,
                     priority_lines: Callable[[], Awaitable[int]] | None = None,
                     freeing: int | None = None) -> dict[int, Claim]:
    """Move due attempts to ``dialing`` for this engine, in the order given, as far as the
    channel caps allow; one transaction, COMMITted.

    ``priority_lines``: the emergency call-backs and family alerts on the trunk now
    (``ivr/trunk.py``). A priority call notes itself, then counts these rows; this claim
    commits its rows, then counts the priority calls again: of two that race, one sees the
    other. Should the trunk then hold more calls than it has lines, the last claims are
    undone. ``freeing``: an attempt whose channel has just hung up, handing its line to
    these (``ivr/line_handover.py``): its hangup is stored in the same transaction, whatever
    the claims' fate, so no other claim sees that line free before this one has it.
    """
    async def priority() -> int:
        return await priority_lines() if priority_lines is not None else 0

    claims: dict[int, Claim] = dict.fromkeys(attempt_ids, Claim(refused="gone"))
    try:
        if session.bind.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                  {"key": _CLAIM_LOCK})
        if freeing is not None:
            await session.execute(_hanging_up(freeing, at))
        waiting = [a for a in await _get_attempts(session, claims)
                   if a.state is OutboundState.SCHEDULED]
        lines = 0
        granted: list[Attempt] = []
        if waiting:
            lines = await _on_line(session, at, caps.longest_call)
            vendor_lines = await _vendor_lines(session, at, caps.longest_call, waiting)
            busy = lines + await priority()
            for attempt in waiting:
                refused = _cap_reached(attempt, busy, vendor_lines, caps)
                if refused is not None:
                    claims[attempt.id] = Claim(refused=refused)
                    continue
                granted.append(attempt)
                busy += 1
                if attempt.vendor_id is not None:
                    vendor_lines[attempt.vendor_id] = vendor_lines.get(attempt.vendor_id, 0) + 1
        moved = set(await session.scalars(
            update(OutboundCall)
            .where(OutboundCall.id.in_([a.id for a in granted]),
                   OutboundCall.state == OutboundState.SCHEDULED)
            .values(state=OutboundState.DIALING, claimed_by=engine_id[:64], claimed_at=at)
            .returning(OutboundCall.id))) if granted else set()
        if moved or freeing is not None:
            await session.commit()  # a hangup stands, claimed or not
        taken = [attempt for attempt in granted if attempt.id in moved]
        over = lines + len(taken) + await priority() - caps.trunk_channels if taken else 0
        for attempt in taken[len(taken) - max(0, over):]:  # a priority call came meanwhile
            await unclaim(session, attempt.id)
            claims[attempt.id] = Claim(refused="trunk_full")
        for attempt in taken[:len(taken) - max(0, over)]:
            claims[attempt.id] = Claim(attempt=attempt)
        return claims
    finally:
        if session.in_transaction():
            await session.rollback()


async def _get_attempts(session: AsyncSession, attempt_ids: Collection[int]) -> list[Attempt]:
    """The stored attempts among ``attempt_ids``, in the order given."""
    rows = await session.execute(select(*_ROW_COLUMNS)
                                 .where(OutboundCall.id.in_(list(attempt_ids))))
    stored = {attempt.id: attempt for attempt in map(Attempt.of, rows)}
    return [stored[i] for i in attempt_ids if i in stored]


async def _vendor_lines(session: AsyncSession, at: datetime, longest_call: timedelta,
                        attempts: Sequence[Attempt]) -> dict[int, int]:
    """Lines each of these attempts' vendors holds now."""
    vendors = {a.vendor_id for a in attempts if a.vendor_id is not None}
    if not vendors:
        return {}
    rows = await session.execute(
        select(OutboundCall.vendor_id, func.count()).select_from(OutboundCall)
        .where(on_line(at, longest_call), OutboundCall.vendor_id.in_(sorted(vendors)))
        .group_by(OutboundCall.vendor_id))
    return {int(vendor): int(count) for vendor, count in rows}


def _cap_reached(attempt: Attempt, busy: int, vendor_lines: Mapping[int, int], caps: Caps
                 ) -> str | None:
    """Why ``attempt`` may not take a line now ("trunk_full", "vendor_busy"), or None;
    ``busy``: the lines taken now, priority calls and earlier claims of this batch included."""
    if busy + caps.reserve.get(attempt.purpose, 0) >= caps.trunk_channels:
        return "trunk_full"
    if attempt.vendor_id is not None \
            and vendor_lines.get(attempt.vendor_id, 0) >= caps.vendor_channels:
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


def cancelling(order_id: int | Collection[int], purpose: CallPurpose, at: datetime) -> Any:
    """The UPDATE that cancels an order's (or several orders') attempts not yet dialled."""
    orders = [order_id] if isinstance(order_id, int) else list(order_id)
    return (
        update(OutboundCall)
        .where(OutboundCall.order_id.in_(orders), OutboundCall.purpose == purpose,
               OutboundCall.state == OutboundState.SCHEDULED)
        .values(state=OutboundState.CANCELLED, finished_at=at)
    )
