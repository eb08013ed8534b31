"""The supervisor's wallboard figures that the database holds.

Calls waiting now and the oldest wait; since local midnight: the share of calls answered
within 15 s (GB/T 33358 asks 95 %), emergencies answered within 60 s and 180 s (97.5 % and
99 %), abandoned calls; vendors' acceptance of today's offers; escalated orders waiting for
an operator. The operators logged in, paused and on a call come from the queue's live
state, not from here (``ivr/queue_members.py``).

The queue is one for the whole platform, so its figures are too; escalated orders are
counted in the supervisor's region (``RegionScope.elder_condition``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.alarm_report import answer_figures, queued_between
from dispatch.models import Elder, OrderStatus, QueueCall, WorkOrder
from dispatch.open_alarms import QueueState
from dispatch.regions import RegionScope
from dispatch.vendor_quality import vendor_figures

ANSWER_TARGETS = {"answered_15s": 95.0, "emergency_60s": 97.5, "emergency_180s": 99.0}


@dataclass(frozen=True, slots=True)
class WallboardFigures:
    waiting: int
    oldest_wait_s: float | None
    offered_today: int
    answered_15s: float | None  # percent of today's calls made to us; None without calls
    emergencies_today: int
    emergency_60s: float | None
    emergency_180s: float | None
    abandoned_today: int
    vendor_offers_today: int
    vendor_acceptance: float | None  # percent of decided offers
    escalated_waiting: int


def local_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    """The start of ``now``'s local day (``now`` aware), in UTC."""
    start = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC)


async def calls_waiting(session: AsyncSession, now: datetime, stale_s: float
                        ) -> tuple[int, float | None]:
    """(calls in the operator queue now, seconds the longest has waited)."""
    rows = (await session.execute(
        select(QueueCall.queued_at, QueueCall.joined_at, QueueCall.answered_at,
               QueueCall.abandoned_at, QueueCall.outcome)
        .where(QueueCall.outcome.is_(None), QueueCall.answered_at.is_(None),
               QueueCall.abandoned_at.is_(None),
               func.coalesce(QueueCall.queued_at, QueueCall.joined_at)
               >= now - timedelta(seconds=stale_s))
    )).all()
    starts = [state.since for state in map(QueueState.of, rows)
              if state.waiting(now, stale_s) and state.since is not None]
    return len(starts), (now - min(starts)).total_seconds() if starts else None


async def escalated_waiting(session: AsyncSession, scope: RegionScope) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(WorkOrder).join(Elder, Elder.id == WorkOrder.elder_id)
        .where(WorkOrder.status == OrderStatus.ESCALATED, scope.elder_condition())
    ) or 0)


def _share(value: float) -> float | None:
    return None if value != value else round(value, 1)  # NaN: nothing offered


async def wallboard_figures(session: AsyncSession, scope: RegionScope, now: datetime,
                            tz: ZoneInfo, stale_s: float) -> WallboardFigures:
    """Every database figure of the wallboard at ``now`` (aware)."""
    midnight = local_midnight(now, tz)
    waiting, oldest = await calls_waiting(session, now, stale_s)
    everyone, emergencies = answer_figures(await queued_between(session, midnight, now))
    offers = (await vendor_figures(session, since=midnight, until=now)).values() \
        if now > midnight else []
    accepted = sum(vendor.accepted for vendor in offers)
    decided = sum(vendor.decided for vendor in offers)
    return WallboardFigures(
        waiting=waiting, oldest_wait_s=oldest,
        offered_today=everyone.offered, answered_15s=_share(everyone.within(15)),
        emergencies_today=emergencies.offered,
        emergency_60s=_share(emergencies.within(60)),
        emergency_180s=_share(emergencies.within(180)),
        abandoned_today=everyone.abandoned,
        vendor_offers_today=decided,
        vendor_acceptance=round(100.0 * accepted / decided, 1) if decided else None,
        escalated_waiting=await escalated_waiting(session, scope),
    )
