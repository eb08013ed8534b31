"""Trunk lines in the attempts' rows, on SQLite and PostgreSQL: an answered attempt holds its
line after its outcome is stored, until its channel hangs up; a hangup that is missed frees
it ``longest_call`` after the outcome; a hangup frees the line whatever the state; a claim
handed the line of a call that has just hung up stores that hangup with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch import outbound
from dispatch.models import CallPurpose, OfferOutcome, OutboundCall

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # stored times only: no clock is read
LONGEST = timedelta(hours=2)


async def _attempt(session: AsyncSession, seq: int) -> int:
    attempt_id = await outbound.schedule(
        session, purpose=CallPurpose.QUALITY_CALLBACK, order_id=None, seq=seq,
        vendor_id=None, number_e164=f"+8693100000{seq:02d}", tries=1, due_at=NOW)
    assert attempt_id is not None
    return attempt_id


async def _claim(session: AsyncSession, attempt_id: int, at: datetime) -> str | None:
    claim = await outbound.claim(session, attempt_id, engine_id="lines-test", at=at,
                                 caps=outbound.Caps(LONGEST, 1, 1))
    return claim.refused


async def test_an_answered_call_holds_its_line_until_it_hangs_up(
        db_session: AsyncSession) -> None:
    first, second = await _attempt(db_session, 1), await _attempt(db_session, 2)
    assert await _claim(db_session, first, NOW) is None
    assert await _claim(db_session, second, NOW) == "trunk_full"  # ringing
    assert await outbound.mark_answered(db_session, first, NOW, "1796000000.7")
    assert await outbound.finish(db_session, first, OfferOutcome.WELL,
                                 NOW + timedelta(seconds=20))
    later = NOW + timedelta(seconds=25)
    assert await outbound.outbound_lines(db_session, later, LONGEST) == 1  # its goodbye
    assert await _claim(db_session, second, later) == "trunk_full"
    assert await outbound.mark_hung_up(db_session, first, NOW + timedelta(seconds=26))
    assert not await outbound.mark_hung_up(db_session, first, NOW + timedelta(seconds=27))
    assert await outbound.outbound_lines(db_session, later, LONGEST) == 0
    assert await _claim(db_session, second, later) is None


async def test_a_missed_hangup_frees_the_line_after_the_longest_call(
        db_session: AsyncSession) -> None:
    attempt = await _attempt(db_session, 1)
    assert await _claim(db_session, attempt, NOW) is None
    assert await outbound.mark_answered(db_session, attempt, NOW, "1796000000.8")
    assert await outbound.finish(db_session, attempt, OfferOutcome.WELL, NOW)
    assert await outbound.outbound_lines(db_session, NOW + LONGEST - timedelta(seconds=1),
                                         LONGEST) == 1
    assert await outbound.outbound_lines(db_session, NOW + LONGEST + timedelta(seconds=1),
                                         LONGEST) == 0


async def test_a_hangup_before_the_outcome_frees_the_line(db_session: AsyncSession) -> None:
    """The elder hung up while the flow still works towards its outcome: the line is free."""
    attempt = await _attempt(db_session, 1)
    assert await _claim(db_session, attempt, NOW) is None
    assert await outbound.mark_answered(db_session, attempt, NOW, "1796000000.9")
    assert await outbound.mark_hung_up(db_session, attempt, NOW + timedelta(seconds=3))
    assert await outbound.outbound_lines(db_session, NOW, LONGEST) == 0
    unanswered = await _attempt(db_session, 2)  # busy: never answered, no line after it
    assert await _claim(db_session, unanswered, NOW) is None
    assert await outbound.finish(db_session, unanswered, OfferOutcome.BUSY, NOW)
    assert await outbound.outbound_lines(db_session, NOW, LONGEST) == 0


async def test_a_claim_racing_a_priority_call_is_undone(db_session: AsyncSession) -> None:
    """A priority call noted itself after this claim counted it, and counted the rows before
    this claim committed: the claim sees it on its count after the commit, and steps back."""
    first, second = await _attempt(db_session, 1), await _attempt(db_session, 2)
    counts = iter([0, 1])  # before the claim's commit, then after it

    async def priority_lines() -> int:
        return next(counts)

    claim = await outbound.claim(db_session, first, engine_id="lines-test", at=NOW,
                                 caps=outbound.Caps(LONGEST, 1, 1),
                                 priority_lines=priority_lines)
    assert claim.refused == "trunk_full"
    undone = await outbound.get_attempt(db_session, first)
    assert undone is not None and undone.state == "scheduled"
    # with one line of two kept free for the priority calls, a caring call waits
    claim = await outbound.claim(db_session, second, engine_id="lines-test", at=NOW,
                                 caps=outbound.Caps(LONGEST, 2, 1,
                                                    {CallPurpose.QUALITY_CALLBACK: 1}),
                                 priority_lines=lambda: _count(1))
    assert claim.refused == "trunk_full"
    assert await _claim(db_session, second, NOW) is None


async def _count(n: int) -> int:
    return n


async def _answered_and_done(session: AsyncSession, attempt_id: int) -> None:
    assert await _claim(session, attempt_id, NOW) is None
    assert await outbound.mark_answered(session, attempt_id, NOW, f"1796000001.{attempt_id}")
    assert await outbound.finish(session, attempt_id, OfferOutcome.WELL,
                                 NOW + timedelta(seconds=20))


async def test_a_claim_handed_a_line_stores_its_hangup_in_the_same_transaction(
        db_session: AsyncSession) -> None:
    first, second = await _attempt(db_session, 1), await _attempt(db_session, 2)
    await _answered_and_done(db_session, first)
    at = NOW + timedelta(seconds=29)
    assert await _claim(db_session, second, at) == "trunk_full"  # its goodbye holds the line
    claim = await outbound.claim(db_session, second, engine_id="lines-test", at=at,
                                 caps=outbound.Caps(LONGEST, 1, 1),
                                 freeing=first)
    assert claim.refused is None and claim.attempt is not None
    hung_up = await db_session.scalar(select(OutboundCall.hung_up_at)
                                      .where(OutboundCall.id == first))
    claimed = await db_session.scalar(select(OutboundCall.claimed_at)
                                      .where(OutboundCall.id == second))
    assert hung_up is not None and hung_up == claimed  # one write: no gap for another claim
    assert await outbound.outbound_lines(db_session, at, LONGEST) == 1


async def test_a_hangup_handed_to_a_refused_claim_still_stands(db_session: AsyncSession) -> None:
    """The freed line went to a priority call meanwhile: the claim is refused, the hangup is
    stored all the same, and the attempt waits for the next line."""
    first, second = await _attempt(db_session, 1), await _attempt(db_session, 2)
    await _answered_and_done(db_session, first)
    at = NOW + timedelta(seconds=29)
    claim = await outbound.claim(db_session, second, engine_id="lines-test", at=at,
                                 caps=outbound.Caps(LONGEST, 1, 1),
                                 priority_lines=lambda: _count(1), freeing=first)
    assert claim.refused == "trunk_full"
    assert await db_session.scalar(select(OutboundCall.hung_up_at)
                                   .where(OutboundCall.id == first)) is not None
    waiting = await outbound.get_attempt(db_session, second)
    assert waiting is not None and waiting.state == "scheduled"
    assert await outbound.outbound_lines(db_session, at, LONGEST) == 0
