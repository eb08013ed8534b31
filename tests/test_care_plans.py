"""Caring calls planned for a day, on SQLite and PostgreSQL: the festival calendar, the
allowed hours, one round per plan and day (however many engines plan at once), quiet days,
holiday campaigns on the festival and not the day before, and the care-plan CSV import."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from dispatch.care_calendar import Festival, festival_date, festivals_on, statutory_holiday
from dispatch.care_import import import_care_plans
from dispatch.care_plans import (
    CareHours,
    add_campaign,
    due_rounds,
    open_campaign_rounds,
    open_plan_rounds,
    window_on,
)
from dispatch.db import async_sessionmaker_for, make_sync_engine
from dispatch.models import (
    CareKind,
    CarePlan,
    CareQuietDay,
    CareRound,
    Elder,
    RoundState,
    SubsidyCategory,
)

TZ = ZoneInfo("Asia/Shanghai")
HOURS = CareHours(TZ)
DAY = date(2026, 10, 19)  # a Monday
AT = datetime(2026, 10, 1, tzinfo=UTC)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), TZ).astimezone(UTC)


# -- the calendar and the hours (pure) ----------------------------------------------------

@pytest.mark.parametrize(("festival", "year", "day"), [
    (Festival.DOUBLE_NINTH, 2026, date(2026, 10, 18)),
    (Festival.MID_AUTUMN, 2026, date(2026, 9, 25)),
    (Festival.SPRING_FESTIVAL, 2027, date(2027, 2, 6)),
    (Festival.DRAGON_BOAT, 2026, date(2026, 6, 19)),
    (Festival.NATIONAL_DAY, 2026, date(2026, 10, 1)),
])
def test_festivals_are_dated_by_the_lunisolar_calendar(festival: Festival, year: int,
                                                       day: date) -> None:
    assert festival_date(festival, year) == day
    assert festival in festivals_on(day)
    assert festival not in festivals_on(day - timedelta(days=1))


def test_statutory_holidays_come_from_the_holiday_calendar() -> None:
    assert statutory_holiday(date(2026, 10, 1)) == "国庆节"
    assert statutory_holiday(date(2026, 10, 12)) is None


def test_windows_stay_inside_the_allowed_hours() -> None:
    # inside: as planned
    assert window_on(DAY, time(9, 30), time(10, 0), HOURS) == (local(DAY, 9, 30),
                                                               local(DAY, 10, 0))
    # too early: from the opening, same length
    assert window_on(DAY, time(6, 0), time(7, 0), HOURS) == (local(DAY, 9), local(DAY, 10))
    # at night: the next morning
    nxt = DAY + timedelta(days=1)
    assert window_on(DAY, time(22, 0), time(23, 0), HOURS) == (local(nxt, 9), local(nxt, 10))
    # running past the close: cut at it
    assert window_on(DAY, time(19, 30), time(21, 0), HOURS) == (local(DAY, 19, 30),
                                                               local(DAY, 20))
    with pytest.raises(ValueError, match="open before"):
        CareHours(TZ, time(20), time(9))


# -- planning on the database -------------------------------------------------------------

async def elders(session: AsyncSession, count: int, county: str = "620102",
                 category: SubsidyCategory = SubsidyCategory.NONE) -> list[int]:
    ids = []
    for n in range(count):
        ids.append(int((await session.execute(insert(Elder).values(
            name=f"老人{n}", county_code=county, subsidy_category=category,
            external_ref=f"{county}-{category.value}-{n}").returning(Elder.id))).scalar_one()))
    await session.commit()
    return ids


async def plan(session: AsyncSession, elder_id: int, kind: CareKind = CareKind.CHECK_IN,
               start: time = time(9, 0), end: time = time(10, 0), weekdays: int = 127,
               **values: Any) -> int:
    plan_id = (await session.execute(insert(CarePlan).values(
        elder_id=elder_id, kind=kind, window_start=start, window_end=end, weekdays=weekdays,
        created_at=AT, **values).returning(CarePlan.id))).scalar_one()
    await session.commit()
    return int(plan_id)


async def rounds(session: AsyncSession) -> list[Any]:
    return list((await session.execute(
        select(CareRound.elder_id, CareRound.kind, CareRound.day, CareRound.due_at,
               CareRound.state, CareRound.outcome).order_by(CareRound.id))).all())


async def test_each_due_plan_gets_one_round_for_the_day(db_session: AsyncSession) -> None:
    a, b, c, d, e = await elders(db_session, 5)
    await plan(db_session, a)
    await plan(db_session, b, CareKind.COMPANION, time(15), time(16), weekdays=0b0000001)
    await plan(db_session, c, CareKind.COMPANION, time(15), time(16), weekdays=0b0000010)
    await plan(db_session, d, starts_on=DAY + timedelta(days=1))
    await plan(db_session, e, CareKind.REMINDER, time(7), time(8), message="记得吃降压药")
    db_session.add(CareQuietDay(elder_id=e, day=DAY))
    await db_session.commit()
    assert await open_plan_rounds(db_session, DAY, HOURS) == 3
    assert await open_plan_rounds(db_session, DAY, HOURS) == 0  # planned once
    got = await rounds(db_session)
    assert [(r.elder_id, r.kind, r.due_at, r.state, r.outcome) for r in got] == [
        (a, CareKind.CHECK_IN, local(DAY, 9), RoundState.DUE, None),
        (b, CareKind.COMPANION, local(DAY, 15), RoundState.DUE, None),  # Mondays only
        (e, CareKind.REMINDER, local(DAY, 9), RoundState.SKIPPED, "quiet_day"),
    ]
    # due once their window opens, in order
    assert await due_rounds(db_session, local(DAY, 8, 59)) == []
    assert [due for _id, due in await due_rounds(db_session, local(DAY, 16))] == [
        local(DAY, 9), local(DAY, 15)]


async def test_two_engines_planning_at_once_write_one_round_each(
        db_engine: AsyncEngine) -> None:
    sessions = async_sessionmaker_for(db_engine)
    async with sessions() as session:
        ids = await elders(session, 40)
        for elder_id in ids:
            await plan(session, elder_id)

    async def planner() -> int:
        async with sessions() as session:
            return await open_plan_rounds(session, DAY, HOURS)

    written = await asyncio.gather(planner(), planner(), planner())
    async with sessions() as session:
        count = await session.scalar(select(func.count()).select_from(CareRound))
        per_elder = await session.scalar(select(func.count(func.distinct(CareRound.elder_id))))
    assert sum(written) == count == per_elder == 40


async def test_a_campaign_greets_its_group_on_the_festival_and_not_the_day_before(
        db_session: AsyncSession) -> None:
    chosen = await elders(db_session, 3, "620102", SubsidyCategory.SANWU)
    await elders(db_session, 2, "620102", SubsidyCategory.NONE)
    await elders(db_session, 2, "620103", SubsidyCategory.SANWU)
    campaign = await add_campaign(db_session, Festival.DOUBLE_NINTH, 2026,
                                  county_code="620102", subsidy_category="sanwu",
                                  message="重阳节快乐", at=AT)
    assert await add_campaign(db_session, Festival.DOUBLE_NINTH, 2026, county_code="620102",
                              subsidy_category="sanwu", message=None, at=AT) == campaign
    festival = festival_date(Festival.DOUBLE_NINTH, 2026)
    assert await open_campaign_rounds(db_session, festival - timedelta(days=1), HOURS) == 0
    assert await open_campaign_rounds(db_session, festival, HOURS) == 3
    assert await open_campaign_rounds(db_session, festival, HOURS) == 0
    got = await rounds(db_session)
    assert sorted(r.elder_id for r in got) == sorted(chosen)
    assert {(r.kind, r.day, r.due_at) for r in got} == {
        (CareKind.GREETING, festival, local(festival, 9))}


# -- the CSV import -------------------------------------------------------------------------

def test_care_plans_are_imported_and_bad_rows_reported(migrated_db_url: str,
                                                       tmp_path: Path) -> None:
    engine = make_sync_engine(migrated_db_url)
    try:
        with engine.begin() as conn:
            for ref in ("E1", "E2"):
                conn.execute(insert(Elder).values(name=ref, external_ref=ref))
    finally:
        engine.dispose()
    path = tmp_path / "plans.csv"
    path.write_text(
        "elder_ref,kind,window,days,message,starts_on,ends_on,quiet_days\n"
        "E1,check_in,09:00-10:00,,,,,2026-12-24;2026-12-25\n"
        "E1,陪伴,15:00-15:30,周一、周四,,,,\n"
        "E2,reminder,08:00-08:15,daily,记得吃降压药,2026-12-01,2026-12-31,\n"
        "E3,check_in,09:00-10:00,,,,,\n"                      # line 5: no such elder
        "E1,check_in,25:00-26:00,,,,,\n"                      # 6: not a time
        "E1,companion,15:00-16:00,,,,,\n"                     # 7: no days
        "E2,reminder,08:00-08:15,,,,,\n"                      # 8: no words
        "E2,check_in,09:00-09:00,,,,,\n"                      # 9: empty window
        "E2,nap,09:00-10:00,,,,,\n"                           # 10: unknown kind
        "E2,check_in,09:00-10:00,someday,,,,\n"               # 11: unknown day
        "E2,check_in,09:00-10:00,,,2026-12-31,2026-12-01,\n"  # 12: ends before it starts
        "E2,reminder,08:00-08:15,,<b>\x1b[2J</b>,,,\n"        # 13: control characters
        "E1,check_in,09:00-11:00,,,,,2026-12-24\n",           # 14: an update, quiet day kept
        encoding="utf-8")
    report = import_care_plans(migrated_db_url, path)
    assert (report.created, report.updated, report.quiet_days) == (3, 1, 2)
    assert [(e.line, e.reason.split(":")[0].split(" ")[0]) for e in report.errors] == [
        (5, "no"), (6, "window"), (7, "days"), (8, "message"), (9, "window"), (10, "kind"),
        (11, "days"), (12, "ends_on"), (13, "message")]
    engine = make_sync_engine(migrated_db_url)
    try:
        with engine.connect() as conn:
            plans = conn.execute(select(Elder.external_ref, CarePlan.kind, CarePlan.window_end,
                                        CarePlan.weekdays, CarePlan.message)
                                 .join(Elder, Elder.id == CarePlan.elder_id)
                                 .order_by(CarePlan.id)).all()
            quiet = conn.scalar(select(func.count()).select_from(CareQuietDay))
    finally:
        engine.dispose()
    assert [tuple(p) for p in plans] == [
        ("E1", CareKind.CHECK_IN, time(11, 0), 127, None),
        ("E1", CareKind.COMPANION, time(15, 30), 0b0001001, None),
        ("E2", CareKind.REMINDER, time(8, 15), 127, "记得吃降压药")]
    assert quiet == 2


def test_the_command_line_adds_a_campaign_and_plans_its_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ivr.cli import main

    url = f"sqlite:///{tmp_path / 'care.sqlite3'}"
    monkeypatch.setenv("HOTLINE_DATABASE__URL", url)
    monkeypatch.setenv("HOTLINE_AMI__ENABLED", "false")
    assert main(["db", "upgrade"]) == 0
    engine = make_sync_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(Elder).values(name="王秀兰", external_ref="E1",
                                              subsidy_category=SubsidyCategory.SANWU))
    finally:
        engine.dispose()
    assert main(["care", "campaign", "--festival", "christmas", "--year", "2026"]) == 2
    assert main(["care", "campaign", "--festival", "double_ninth", "--year", "2026",
                 "--category", "sanwu", "--message", "重阳节快乐"]) == 0
    assert main(["care", "plan", "--date", "2026-10-17"]) == 0
    assert main(["care", "plan", "--date", "2026-10-18"]) == 0
    assert main(["care", "plan", "--date", "2026-10-32"]) == 2
    assert main(["report", "care", "--date", "2026-10-18"]) == 0
    assert main(["report", "care", "--date", "yesterday"]) == 2
    out = capsys.readouterr().out
    assert "Caring calls of 2026-10-18\n  due: 1 (greeting 1)" in out
    assert "channel utilisation: no calls" in out
    assert "2026-10-17: 0 planned calls and 0 greetings written" in out
    assert "2026-10-18: 0 planned calls and 1 greetings written" in out
