"""Vendor quality figures, the score and rank refresh, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import OrderStatus, Vendor, VendorStatus
from dispatch.selection import SelectionPolicy, vendor_candidates
from dispatch.vendor_quality import (
    QualityRules,
    VendorFigures,
    quality_score,
    refresh_rank_scores,
    vendor_figures,
)
from tests.vendor_world import (
    add_complaint,
    add_elder,
    add_offer,
    add_order,
    add_vendors,
    vendor_row,
)

AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
RULES = QualityRules()


async def _offers(session: AsyncSession, elder_id: int, vendor_id: int,
                  outcomes: list[str | None], count: int = 1, *, days_ago: float = 1.0) -> None:
    """``count`` offers of an order each to the vendor, each made of calls with ``outcomes``."""
    for _ in range(count):
        await add_offer(session, elder_id, vendor_id, outcomes, AT - days_ago * DAY)


# -- the score (pure) ----------------------------------------------------------------------

def test_score_needs_enough_decided_offers() -> None:
    few = VendorFigures(1, accepted=4, not_counted=14)
    assert few.decided == 4 and few.offers == 18
    assert quality_score(few, RULES) is None
    enough = VendorFigures(1, accepted=4, unanswered=1)
    assert quality_score(enough, RULES) == 80.0  # acceptance only: the other parts lack data
    assert quality_score(enough, QualityRules(min_decided_offers=6)) is None


def test_score_combines_the_parts_with_their_weights() -> None:
    figures = VendorFigures(1, accepted=6, declined=2, unanswered=2, due_arrivals=4,
                            on_time=3, ratings=5, rating_mean=4.0, jobs=5,
                            complaint_orders=["10000001"])
    expected = 100 * (0.35 * 0.6 + 0.25 * 0.75 + 0.25 * 0.75 + 0.15 * 0.8)
    assert quality_score(figures, RULES) == pytest.approx(expected, abs=0.05)
    perfect = VendorFigures(2, accepted=9, due_arrivals=9, on_time=9,
                            ratings=9, rating_mean=5.0, jobs=9)
    assert quality_score(perfect, RULES) == 100.0
    worst = VendorFigures(3, unanswered=5, declined=4, accepted=1, due_arrivals=1,
                          on_time=0, ratings=1, rating_mean=1.0, jobs=1,
                          complaint_orders=["1", "2"])
    assert quality_score(worst, RULES) == pytest.approx(100 * 0.35 * 0.1, abs=0.05)
    with pytest.raises(ValidationError):
        QualityRules(acceptance_weight=0, on_time_weight=0, rating_weight=0,
                     complaint_weight=0)
    with pytest.raises(ValidationError):
        QualityRules(min_decided_offers=0)


# -- figures from real rows ----------------------------------------------------------------

async def test_figures_count_only_what_is_the_vendors_doing(db_session: AsyncSession) -> None:
    good, other = await add_vendors(db_session, [vendor_row("优"), vendor_row("他")])
    elder = await add_elder(db_session, created=AT - 90 * DAY)
    await _offers(db_session, elder, good, ["accepted"], 7)
    await _offers(db_session, elder, good, ["busy", "accepted"])  # accepted on the retry
    await _offers(db_session, elder, good, ["no_key", "declined"])
    await _offers(db_session, elder, good, ["busy", "busy", "no_answer"])  # one offer
    await _offers(db_session, elder, good, ["congestion", "failed"])  # not the vendor's doing
    await _offers(db_session, elder, good, ["lost"])
    await _offers(db_session, elder, good, ["something_new"])
    await _offers(db_session, elder, good, [None])  # still scheduled: no outcome yet
    await _offers(db_session, elder, good, ["declined"], 5, days_ago=31)  # before the window
    await _offers(db_session, elder, other, ["declined"], 2)

    def accepted(days_ago: float, **progress: object) -> dict[str, object]:
        start = AT - days_ago * DAY
        return {"status": OrderStatus.COMPLETED, "vendor_id": good, "accepted_at": start,
                "arrive_deadline": start + HOUR, **progress}

    on_time = await add_order(db_session, elder, AT - 10 * DAY, **accepted(
        10, arrived_at=AT - 10 * DAY + HOUR / 2,
        completed_at=AT - 10 * DAY + 2 * HOUR, rating=5))
    at_deadline = await add_order(db_session, elder, AT - 9 * DAY, **accepted(
        9, arrived_at=AT - 9 * DAY + HOUR, completed_at=AT - 9 * DAY + 2 * HOUR, rating=4))
    late = await add_order(db_session, elder, AT - 8 * DAY, **accepted(
        8, arrived_at=AT - 8 * DAY + 2 * HOUR, completed_at=AT - 8 * DAY + 3 * HOUR))
    never = await add_order(db_session, elder, AT - 7 * DAY, **accepted(
        7, status=OrderStatus.ESCALATED))
    await add_order(db_session, elder, AT - 6 * DAY, **accepted(  # cancelled: not counted
        6, status=OrderStatus.CANCELLED))
    await add_order(db_session, elder, AT - DAY / 48, **accepted(  # deadline still ahead
        1 / 48, status=OrderStatus.ACCEPTED))
    old = await add_order(db_session, elder, AT - 60 * DAY, **accepted(
        60, arrived_at=AT - 59 * DAY, completed_at=AT - 59 * DAY, rating=1))
    await add_complaint(db_session, late.id, good, AT - 7 * DAY, rating=None)
    await add_complaint(db_session, old.id, good, AT - 59 * DAY)

    figures = await vendor_figures(db_session, since=AT - 30 * DAY, until=AT)
    mine = figures[good]
    assert (mine.offers, mine.calls, mine.decided, mine.not_counted) == (13, 18, 10, 3)
    assert (mine.accepted, mine.declined, mine.unanswered) == (8, 1, 1)
    assert mine.acceptance_rate == 0.8
    assert (mine.due_arrivals, mine.on_time, mine.late) == (4, 2, 2)
    assert mine.late_orders == [late.order_no, never.order_no]
    assert (mine.ratings, mine.rating_mean) == (2, 4.5)
    assert mine.jobs == 6
    assert mine.complaint_orders == [late.order_no]
    assert on_time.order_no not in mine.late_orders
    assert at_deadline.order_no not in mine.late_orders
    assert figures[other].declined == 2 and figures[other].jobs == 0
    expected = 100 * (0.35 * 0.8 + 0.25 * 0.5 + 0.25 * 3.5 / 4 + 0.15 * (1 - 1 / 6))
    assert quality_score(mine, RULES) == pytest.approx(expected, abs=0.05)
    with pytest.raises(ValueError, match="empty window"):
        await vendor_figures(db_session, since=AT, until=AT)


async def test_refresh_writes_rank_scores_that_selection_uses(db_session: AsyncSession) -> None:
    good, thin, poor, removed, idle = await add_vendors(db_session, [
        vendor_row("优", rank=None), vendor_row("证据少", rank=70.0),
        vendor_row("差", rank=90.0), vendor_row("已淘汰", rank=12.0, status=VendorStatus.REMOVED),
        vendor_row("无业务", rank=50.0)])
    elder = await add_elder(db_session, created=AT - 90 * DAY)
    await _offers(db_session, elder, good, ["accepted"], 5)
    await _offers(db_session, elder, good, ["congestion"], 10)  # trunk trouble: not counted
    await _offers(db_session, elder, thin, ["busy", "busy", "busy"], 3)  # 3 offers, 9 calls
    await _offers(db_session, elder, poor, ["accepted"])
    await _offers(db_session, elder, poor, ["declined"], 2)
    await _offers(db_session, elder, poor, ["busy", "no_answer"], 2)
    await _offers(db_session, elder, removed, ["declined"], 9)

    assert await refresh_rank_scores(db_session, at=AT) == 2
    ranks = dict((await db_session.execute(select(Vendor.id, Vendor.rank_score))).all())
    assert ranks == {good: 100.0, thin: None, poor: 20.0, removed: 12.0, idle: None}

    order = await add_order(db_session, elder, AT)
    found = await vendor_candidates(db_session, order_id=order.id, at=AT,
                                    tz=ZoneInfo("Asia/Shanghai"), policy=SelectionPolicy())
    assert [c.vendor_id for c in found] == [good, thin, idle, poor]

    # A week later the shorter window no longer holds these offers: everyone is new again.
    assert await refresh_rank_scores(db_session, at=AT + 7 * DAY, window_days=7) == 0
    with pytest.raises(ValueError):
        await refresh_rank_scores(db_session, at=AT, window_days=0)
