"""Caring calls planned for a day: each due plan, and each campaign on its festival, gets
one round per elder, inside the allowed hours.

A round is a row of ``care_rounds``, unique per plan and day (and per campaign and elder),
written with INSERT ... ON CONFLICT DO NOTHING: however many engines plan the same day at
once, an elder gets one round. A plan whose day is one of the elder's quiet days gets a
``skipped`` round, so the day's report accounts for it. No round is due outside the
allowed hours: a window that opens before them starts at their opening, and one that opens
after them waits for the next morning, keeping its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.care_calendar import Festival, festival_date
from dispatch.db import insert_ignoring
from dispatch.models import (
    CareCampaign,
    CareKind,
    CarePlan,
    CareQuietDay,
    CareRound,
    Elder,
    OutboundCall,
    OutboundState,
    RoundState,
)

EVERY_DAY = 0b1111111
CHUNK = 1000  # rows per INSERT


@dataclass(frozen=True)
class CareHours:
    """When caring calls may ring, in local time (default 09:00-20:00)."""

    tz: ZoneInfo
    start: time = time(9, 0)
    end: time = time(20, 0)

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError(f"allowed hours must open before they close: {self.start}-"
                             f"{self.end}")

    def opening(self, day: date) -> datetime:
        return datetime.combine(day, self.start, self.tz)

    def closing(self, day: date) -> datetime:
        return datetime.combine(day, self.end, self.tz)


def weekday_bit(day: date) -> int:
    """The bit of ``day``'s weekday in a plan's ``weekdays`` (bit 0 Monday .. 6 Sunday)."""
    return 1 << day.weekday()


def window_on(day: date, start: time, end: time, hours: CareHours) -> tuple[datetime, datetime]:
    """The UTC window of a plan's local ``start``-``end`` on ``day``, moved inside the
    allowed hours: opened no earlier than their opening, or, if it opens after their close,
    at the next day's opening; closed no later than that day's close."""
    length = (datetime.combine(day, end) - datetime.combine(day, start)) % timedelta(days=1)
    opens = datetime.combine(day, start, hours.tz)
    if opens < hours.opening(day):
        opens = hours.opening(day)
    elif opens >= hours.closing(day):
        opens = hours.opening(day + timedelta(days=1))
    closes = min(opens + (length or timedelta(minutes=1)), hours.closing(opens.date()))
    return opens.astimezone(UTC), closes.astimezone(UTC)


def _due_plans(day: date) -> Any:
    """Plans due on ``day`` that have no round for it yet, with the elder's quiet day."""
    quiet = exists().where(CareQuietDay.elder_id == CarePlan.elder_id, CareQuietDay.day == day)
    planned = exists().where(CareRound.plan_id == CarePlan.id, CareRound.day == day)
    return select(CarePlan.id, CarePlan.elder_id, CarePlan.kind, CarePlan.window_start,
                  CarePlan.window_end, quiet).where(
        CarePlan.stopped_at.is_(None),
        or_(CarePlan.starts_on.is_(None), CarePlan.starts_on <= day),
        or_(CarePlan.ends_on.is_(None), CarePlan.ends_on >= day),
        CarePlan.weekdays.op("&")(weekday_bit(day)) != 0,
        ~planned)


async def _insert(session: AsyncSession, rows: Sequence[dict[str, Any]],
                  unique: Sequence[str]) -> int:
    written = 0
    statement = insert_ignoring(CareRound.__table__, session.bind.dialect, unique).returning(
        CareRound.__table__.c.id)  # the rows written: a clash returns none
    for at in range(0, len(rows), CHUNK):
        result = await session.execute(statement, list(rows[at:at + CHUNK]))
        written += len(result.all())
    return written


async def open_plan_rounds(session: AsyncSession, day: date, hours: CareHours) -> int:
    """Write ``day``'s round of every plan due that day (a quiet day's as ``skipped``);
    returns how many this call wrote. COMMITs."""
    rows = []
    for plan_id, elder_id, kind, start, end, quiet in await session.execute(_due_plans(day)):
        opens, closes = window_on(day, start, end, hours)
        rows.append({"plan_id": plan_id, "campaign_id": None, "elder_id": elder_id,
                     "kind": kind, "day": day, "due_at": opens, "until": closes,
                     "state": RoundState.SKIPPED if quiet else RoundState.DUE, "tries": 0,
                     "finished_at": opens if quiet else None,
                     "outcome": "quiet_day" if quiet else None})
    written = await _insert(session, rows, ("plan_id", "day"))
    await session.commit()
    return written


async def add_campaign(session: AsyncSession, festival: Festival, year: int, *,
                       county_code: str | None, subsidy_category: str | None,
                       message: str | None, at: datetime) -> int:
    """The campaign of ``festival`` in ``year`` for a group of elders (an existing one of
    the same group is kept); its id. COMMITs."""
    group = and_(CareCampaign.festival == festival.value, CareCampaign.year == year,
                 _same(CareCampaign.county_code, county_code),
                 _same(CareCampaign.subsidy_category, subsidy_category))
    found = await session.scalar(select(CareCampaign.id).where(group))
    if found is None:
        session.add(CareCampaign(festival=festival.value, year=year,
                                 day=festival_date(festival, year), county_code=county_code,
                                 subsidy_category=subsidy_category, message=message,
                                 created_at=at))
        await session.flush()
        found = await session.scalar(select(CareCampaign.id).where(group))
    await session.commit()
    assert found is not None
    return int(found)


def _same(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


async def open_campaign_rounds(session: AsyncSession, day: date, hours: CareHours) -> int:
    """Write a greeting round for every elder of every campaign whose festival is ``day``
    (none the day before); returns how many this call wrote. COMMITs."""
    opens, closes = window_on(day, hours.start, hours.end, hours)
    written = 0
    for campaign in (await session.scalars(
            select(CareCampaign).where(CareCampaign.day == day))).all():
        greeted = exists().where(CareRound.campaign_id == campaign.id,
                                 CareRound.elder_id == Elder.id)
        elders = select(Elder.id).where(~greeted)
        if campaign.county_code is not None:
            elders = elders.where(Elder.county_code == campaign.county_code)
        if campaign.subsidy_category is not None:
            elders = elders.where(Elder.subsidy_category == campaign.subsidy_category)
        rows = [{"plan_id": None, "campaign_id": campaign.id, "elder_id": elder_id,
                 "kind": CareKind.GREETING, "day": day, "due_at": opens, "until": closes,
                 "state": RoundState.DUE, "tries": 0, "finished_at": None, "outcome": None}
                for elder_id in (await session.scalars(elders)).all()]
        written += await _insert(session, rows, ("campaign_id", "elder_id"))
    await session.commit()
    return written


async def due_rounds(session: AsyncSession, now: datetime, limit: int = 500
                     ) -> list[tuple[int, datetime]]:
    """Rounds waiting whose window has opened, oldest first: (id, due_at)."""
    rows = await session.execute(
        select(CareRound.id, CareRound.due_at)
        .where(CareRound.state == RoundState.DUE, CareRound.due_at <= now)
        .order_by(CareRound.due_at, CareRound.id).limit(limit))
    return [(int(i), due) for i, due in rows]


@dataclass(frozen=True)
class PlanView:
    """An elder's standing caring call, as the console lists it."""

    id: int
    kind: CareKind
    window: str  # "09:00-10:00", local
    days: str  # "daily", "weekdays" or "Mon Thu"
    message: str | None
    starts_on: date | None
    ends_on: date | None
    stopped: bool


DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def days_label(weekdays: int) -> str:
    if weekdays & EVERY_DAY == EVERY_DAY:
        return "daily"
    if weekdays & EVERY_DAY == 0b0011111:
        return "weekdays"
    return " ".join(label for bit, label in enumerate(DAY_LABELS) if weekdays >> bit & 1)


async def elder_care_plans(session: AsyncSession, elder_id: int, today: date
                           ) -> tuple[list[PlanView], list[date]]:
    """The elder's plans (stopped ones last) and quiet days from ``today`` on."""
    plans = (await session.scalars(select(CarePlan).where(CarePlan.elder_id == elder_id)
                                   .order_by(CarePlan.stopped_at.is_not(None),
                                             CarePlan.window_start, CarePlan.id))).all()
    quiet = (await session.scalars(select(CareQuietDay.day).where(
        CareQuietDay.elder_id == elder_id, CareQuietDay.day >= today)
        .order_by(CareQuietDay.day))).all()
    return [PlanView(id=p.id, kind=p.kind, window=f"{p.window_start:%H:%M}-"
                     f"{p.window_end:%H:%M}", days=days_label(p.weekdays), message=p.message,
                     starts_on=p.starts_on, ends_on=p.ends_on, stopped=p.stopped_at is not None)
            for p in plans], list(quiet)


async def stop_plan(session: AsyncSession, elder_id: int, plan_id: int, at: datetime) -> bool:
    """Stop the elder's plan: no round is written for it any more; a round of it not yet
    called is skipped, and one calling has its tries not yet dialled cancelled and ends
    skipped too (a call ringing now ends as it goes, with no try after it). False if the
    plan is not theirs or already stopped. The caller commits (with its audit row)."""
    moved = await session.execute(
        update(CarePlan).where(CarePlan.id == plan_id, CarePlan.elder_id == elder_id,
                               CarePlan.stopped_at.is_(None)).values(stopped_at=at))
    if moved.rowcount != 1:
        return False
    open_rounds = select(CareRound.id).where(
        CareRound.plan_id == plan_id,
        CareRound.state.in_((RoundState.DUE, RoundState.CALLING))).scalar_subquery()
    await session.execute(
        update(OutboundCall).where(OutboundCall.round_id.in_(open_rounds),
                                   OutboundCall.state == OutboundState.SCHEDULED)
        .values(state=OutboundState.CANCELLED, finished_at=at, outcome="plan_stopped"))
    await session.execute(
        update(CareRound).where(CareRound.plan_id == plan_id,
                                CareRound.state.in_((RoundState.DUE, RoundState.CALLING)))
        .values(state=RoundState.SKIPPED, finished_at=at, outcome="plan_stopped"))
    return True
