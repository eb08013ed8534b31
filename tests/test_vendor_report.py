"""The monthly vendor report and ``hotline report vendors``, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.db import async_sessionmaker_for, make_async_engine
from dispatch.models import OrderStatus, VendorStatus
from dispatch.vendor_report import (
    format_vendor_report,
    month_bounds,
    parse_month,
    previous_month,
    vendor_report,
)
from tests.vendor_world import (
    add_complaint,
    add_elder,
    add_offer,
    add_order,
    add_vendors,
    vendor_row,
)

TZ = ZoneInfo("Asia/Shanghai")
MID_OCTOBER = datetime(2025, 10, 15, 2, 0, tzinfo=UTC)
FIRST_LOCAL_HOUR = datetime(2025, 9, 30, 16, 30, tzinfo=UTC)  # 2025-10-01 00:30 local
NOVEMBER_LOCAL = datetime(2025, 10, 31, 16, 30, tzinfo=UTC)  # 2025-11-01 00:30 local
AFTER = datetime(2025, 12, 1, tzinfo=UTC)


@dataclass
class World:
    ranked: list[int]  # eleven scored vendors, worst first
    thin: int
    removed: int
    bad_order: str  # the worst vendor's late, poorly rated order with a complaint


async def _populate(session: AsyncSession) -> World:
    """Eleven vendors with ten decided offers each in October 2025 (local time), the worst
    (in the month's first local hour) with a late arrival, a rating of 1 and a complaint;
    one with too little evidence in October; one removed vendor with the worst figures."""
    rows = [vendor_row(f"商家{i:02d}") for i in range(11)]
    ranked = await add_vendors(session, rows)
    thin, removed = await add_vendors(session, [
        vendor_row("新来的"), vendor_row("已淘汰", status=VendorStatus.REMOVED)])
    elder = await add_elder(session, created=MID_OCTOBER)

    async def offers(vendor_id: int, outcome: str, count: int, at: datetime) -> None:
        for _ in range(count):
            await add_offer(session, elder, vendor_id, [outcome], at)

    for accepted, vendor_id in enumerate(ranked):
        when = FIRST_LOCAL_HOUR if vendor_id == ranked[0] else MID_OCTOBER
        await offers(vendor_id, "accepted", accepted, when)
        await offers(vendor_id, "declined", 5 - accepted // 2, when)
        await offers(vendor_id, "no_answer", 5 - (accepted + 1) // 2, when)
        await offers(vendor_id, "congestion", 3, when)
    await offers(thin, "declined", 2, MID_OCTOBER)
    await offers(thin, "declined", 5, NOVEMBER_LOCAL)  # November in Lanzhou: not counted
    await offers(removed, "declined", 10, MID_OCTOBER)
    worst = ranked[0]
    bad = await add_order(session, elder, MID_OCTOBER, status=OrderStatus.COMPLETED,
                          vendor_id=worst, accepted_at=MID_OCTOBER,
                          arrive_deadline=MID_OCTOBER + timedelta(hours=1),
                          arrived_at=MID_OCTOBER + timedelta(minutes=90),
                          completed_at=MID_OCTOBER + timedelta(hours=3), rating=1)
    await add_complaint(session, bad.id, worst, MID_OCTOBER + timedelta(days=1))
    return World(ranked, thin, removed, bad.order_no or "")


# -- months (pure) -------------------------------------------------------------------------

def test_months_are_local_calendar_months() -> None:
    assert parse_month("2025-10") == (2025, 10)
    assert parse_month(" 2025-01 ") == (2025, 1)
    for bad in ("2025-13", "2025-00", "2025-1", "25-10", "2025/10", "", "2025-10-01",
                "２０２５-１０"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            parse_month(bad)
    since, until = month_bounds(2025, 12, TZ)
    assert since.astimezone(UTC) == datetime(2025, 11, 30, 16, 0, tzinfo=UTC)
    assert until.astimezone(UTC) == datetime(2025, 12, 31, 16, 0, tzinfo=UTC)
    assert previous_month(datetime(2026, 1, 5, tzinfo=UTC), TZ) == (2025, 12)
    # 2026-11-30 17:00 UTC is already 1 December in Lanzhou.
    assert previous_month(datetime(2026, 11, 30, 17, 0, tzinfo=UTC), TZ) == (2026, 11)


# -- the report ----------------------------------------------------------------------------

async def test_report_names_the_bottom_with_evidence(db_session: AsyncSession) -> None:
    world = await _populate(db_session)
    report = await vendor_report(db_session, year=2025, month=10, tz=TZ, now=AFTER)
    assert report.since == datetime(2025, 9, 30, 16, 0, tzinfo=UTC)
    assert report.until == datetime(2025, 10, 31, 16, 0, tzinfo=UTC)
    assert [line.vendor_id for line in report.vendors] == [*world.ranked, world.thin,
                                                           world.removed]
    assert [line.vendor_id for line in report.bottom] == [world.ranked[0]]  # 10 % of 11
    assert [line.vendor_id for line in report.insufficient] == [world.thin]
    scores = [line.score for line in report.vendors[:11]]
    assert scores == sorted(scores) and len(set(scores)) == 11
    worst = report.bottom[0].figures
    assert (worst.offers, worst.accepted, worst.declined, worst.unanswered) == (13, 0, 5, 5)
    assert worst.late_orders == worst.complaint_orders == [world.bad_order]
    assert [line.score for line in report.vendors[:11]] == [10.0 * k for k in range(11)]
    assert report.vendors[11].figures.decided == 2  # the November offers are not counted

    text = format_vendor_report(report)
    assert "Vendor report 2025-10 (2025-10-01 00:00 to 2025-11-01 00:00 Asia/Shanghai)" in text
    assert "bottom 1 of 11 scored vendors, candidates for removal (末位淘汰):" in text
    assert (f"#{world.ranked[0]} 商家00, score 0.0: 13 offers (13 calls): 0 accepted, 5 declined, "
            "5 not answered, 3 not counted (acceptance 0.0 %); 1 of 1 arrivals late "
            f"(orders {world.bad_order}); 1 ratings, mean 1.00; 1 complaints "
            f"(orders {world.bad_order})") in text
    assert f"#{world.thin} 新来的: 2 decided offers" in text

    three = await vendor_report(db_session, year=2025, month=10, tz=TZ, now=AFTER, bottom=3)
    assert [line.vendor_id for line in three.bottom] == world.ranked[:3]
    everyone = await vendor_report(db_session, year=2025, month=10, tz=TZ, now=AFTER,
                                   bottom=50)
    assert world.removed not in [line.vendor_id for line in everyone.bottom]
    assert len(everyone.bottom) == 11


async def test_report_of_a_month_in_progress_or_to_come(db_session: AsyncSession) -> None:
    world = await _populate(db_session)
    early = await vendor_report(db_session, year=2025, month=10, tz=TZ,
                                now=MID_OCTOBER - timedelta(days=1))
    assert early.until == MID_OCTOBER - timedelta(days=1)
    # Only the offers of October's first local hour (30 September in UTC) so far.
    assert [line.vendor_id for line in early.bottom] == [world.ranked[0]]
    assert early.bottom[0].figures.decided == 10
    assert [line.vendor_id for line in early.insufficient] == [*world.ranked[1:], world.thin]
    empty = await vendor_report(db_session, year=2025, month=8, tz=TZ, now=AFTER)
    assert empty.bottom == [] and len(empty.insufficient) == 12
    assert "none" in format_vendor_report(empty)
    with pytest.raises(ValueError, match="has not begun"):
        await vendor_report(db_session, year=2026, month=1, tz=TZ, now=AFTER)
    with pytest.raises(ValueError, match="at least 1"):
        await vendor_report(db_session, year=2025, month=10, tz=TZ, now=AFTER, bottom=0)


# -- the command ---------------------------------------------------------------------------

async def _populate_at(url: str) -> World:
    engine = make_async_engine(url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            return await _populate(session)
    finally:
        await engine.dispose()


def test_cli_report_vendors(migrated_db_url: str, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.cli import main

    world = asyncio.run(_populate_at(migrated_db_url))
    monkeypatch.setenv("HOTLINE_DATABASE__URL", migrated_db_url)
    monkeypatch.setenv("HOTLINE_AMI__ENABLED", "false")

    monkeypatch.setenv("HOTLINE_DISPATCH__TIMEZONE", "Asia/Shanghai")
    assert main(["report", "vendors", "--month", "2025-10", "--bottom", "2"]) == 0
    text = capsys.readouterr().out
    assert "bottom 2 of 11 scored vendors" in text
    assert f"#{world.ranked[1]} 商家01, score" in text

    assert main(["report", "vendors", "--month", "2025-10", "--json", "--tz", "UTC"]) == 0
    assert json.loads(capsys.readouterr().out)["since"] == "2025-10-01T00:00:00+00:00"
    assert main(["report", "vendors", "--month", "2025-10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bottom"] == [world.ranked[0]]
    assert data["insufficient_evidence"] == [world.thin]
    worst = next(v for v in data["vendors"] if v["vendor_id"] == world.ranked[0])
    assert worst["late_orders"] == worst["complaint_orders"] == [world.bad_order]
    assert worst["not_answered"] == 5 and worst["not_counted"] == 3

    assert main(["report", "vendors"]) == 0  # last month: no activity in this database
    year, month = previous_month(datetime.now(UTC), TZ)
    assert f"Vendor report {year:04d}-{month:02d}" in capsys.readouterr().out

    for bad in (["--month", "2025-13"], ["--bottom", "0"], ["--tz", "Mars/Olympus"],
                ["--month", "2999-01"]):
        assert main(["report", "vendors", "--month", "2025-10", *bad]) == 2
        assert capsys.readouterr().err.startswith("hotline: ")
    assert main(["report", "alarms", "--since", "2025-10-01"]) == 0
    assert "emergency calls: offered 0" in capsys.readouterr().out
