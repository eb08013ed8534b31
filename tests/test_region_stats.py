"""Statistics by region and period (``hotline report stats``), on SQLite and PostgreSQL: each
figure lands in its elder's county, city and province; an area keeps only its regions; the
rows of one level add up to the next level's; the command writes the same table as CSV and
XLSX."""

from __future__ import annotations

import csv
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from dispatch.db import make_sync_engine
from dispatch.models import (
    Call,
    CallPurpose,
    CareKind,
    CareRound,
    Complaint,
    OrderEvent,
    OrderSource,
    OrderStatus,
    OutboundCall,
    OutboundState,
    QueueCall,
    RoundState,
    ServiceType,
    Vendor,
    WorkOrder,
)
from dispatch.orders import PRIORITY, order_no_for
from dispatch.region_stats import COLUMNS, UNKNOWN, area_of, region_stats, stats_table
from dispatch.regions import RegionLevel, RegionScope
from ivr.cli import main
from tests.console_world import CHAOYANG, DONGCHENG, HEPING, seed_world

SINCE = datetime(2026, 11, 1, tzinfo=UTC)  # stored times only: no clock is read
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
AT = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
BEFORE = SINCE - timedelta(days=2)


def _order(session: Session, elder_id: int, service: ServiceType, *, vendor_id: int | None,
           accepted: bool = False, arrived_late_s: float | None = None,
           rating: int | None = None, offered: bool = False) -> WorkOrder:
    order = WorkOrder(elder_id=elder_id, service=service, priority=PRIORITY[service],
                      status=OrderStatus.COMPLETED if rating else OrderStatus.DISPATCHING,
                      source=OrderSource.PHONE, requested_by="elder", created_at=AT,
                      vendor_id=vendor_id if accepted else None)
    if accepted:
        order.accepted_at = AT + timedelta(minutes=2)
        order.arrive_deadline = AT + timedelta(hours=1)
        if arrived_late_s is not None:
            order.arrived_at = order.arrive_deadline + timedelta(seconds=arrived_late_s)
    if rating is not None:
        order.completed_at, order.rating = AT + timedelta(hours=2), rating
    session.add(order)
    session.flush()
    order.order_no = order_no_for(order.id)
    if offered:
        session.add(OutboundCall(purpose=CallPurpose.VENDOR_OFFER, order_id=order.id, seq=1,
                                 vendor_id=vendor_id, number_e164="+8613900000001",
                                 state=OutboundState.DONE, due_at=AT,
                                 outcome="accepted" if accepted else "declined"))
    return order


def _call(session: Session, uniqueid: str, elder_id: int | None, at: datetime,
          wait_s: float | None = None, abandoned: bool = False, priority: int = 0,
          reason: str = "caller_request") -> None:
    session.add(Call(uniqueid=uniqueid, channel="PJSIP/trunk-1", direction="inbound",
                     identity_status="known" if elder_id else "unknown", elder_id=elder_id,
                     started_at=at))
    if wait_s is None and not abandoned:
        return
    session.add(QueueCall(
        uniqueid=uniqueid, queue="hotline-operators", reason=reason, priority=priority,
        queued_at=at, joined_at=at,
        answered_at=at + timedelta(seconds=wait_s) if wait_s is not None else None,
        abandoned_at=at + timedelta(seconds=40) if abandoned else None))


def _round(session: Session, elder_id: int, state: RoundState, due: datetime) -> None:
    session.add(CareRound(elder_id=elder_id, kind=CareKind.CHECK_IN, day=due.date(),
                          due_at=due, until=due + timedelta(hours=1), state=state))


@pytest.fixture
def elders(migrated_db_url: str) -> dict[str, int]:
    """Elders in three counties of two cities of two provinces, and a month of their calls,
    orders, alarms and caring calls (with some just before the month)."""
    world = seed_world(migrated_db_url)
    dongcheng, chaoyang = world.elders["赵淑珍"], world.elders["李秀英"]
    heping = world.elders["孙桂兰"]
    engine = make_sync_engine(migrated_db_url)
    try:
        with Session(engine) as session, session.begin():
            vendor = Vendor(name="和平助餐", created_at=AT)
            session.add(vendor)
            session.flush()
            _call(session, "1.1", dongcheng, AT, wait_s=10)  # answered within 15 s
            _call(session, "1.2", dongcheng, AT, abandoned=True)
            _call(session, "1.3", dongcheng, BEFORE, wait_s=5)  # before the month
            _call(session, "2.1", chaoyang, AT, wait_s=70, priority=10,
                  reason="handset_emergency")  # an alarm answered within 180 s, not 60
            _call(session, "3.1", heping, AT)  # served by the menu, no queue
            _call(session, "3.2", heping, AT, wait_s=3, reason="emergency_callback")
            _call(session, "9.1", None, AT, wait_s=5)  # an unregistered caller
            _order(session, dongcheng, ServiceType.MEAL, vendor_id=vendor.id, accepted=True,
                   arrived_late_s=-60, rating=5, offered=True)
            _order(session, chaoyang, ServiceType.HOUSEKEEPING, vendor_id=vendor.id,
                   offered=True)
            alarm = _order(session, chaoyang, ServiceType.EMERGENCY, vendor_id=None)
            session.add(OrderEvent(order_id=alarm.id, at=AT + timedelta(minutes=5),
                                   kind="alarm_closed", detail={"disposition": "accidental"}))
            late = _order(session, heping, ServiceType.MEAL, vendor_id=vendor.id,
                          accepted=True, arrived_late_s=600, rating=2, offered=True)
            session.add(Complaint(order_id=late.id, vendor_id=vendor.id, rating=2,
                                  opened_at=AT + timedelta(hours=3)))
            _round(session, dongcheng, RoundState.WELL, AT)
            _round(session, dongcheng, RoundState.WELL, BEFORE)
            _round(session, chaoyang, RoundState.ESCALATED, AT)
            _round(session, heping, RoundState.SKIPPED, AT)
    finally:
        engine.dispose()
    return {"dongcheng": dongcheng, "chaoyang": chaoyang, "heping": heping}


async def _rows(session: AsyncSession, level: RegionLevel, area: RegionScope | None = None
                ) -> dict[str, Counter[str]]:
    """Each region's figures that are not zero (a missing one reads 0)."""
    stats = await region_stats(session, level, area, SINCE, UNTIL)
    return {row.region: Counter({column: value for column, value in row.values.items()
                                 if value}) for row in stats.rows}


async def test_each_figure_lands_in_its_elders_county(elders: dict[str, int],
                                                      db_session: AsyncSession) -> None:
    rows = await _rows(db_session, RegionLevel.COUNTY)
    assert set(rows) == {DONGCHENG[2], CHAOYANG[2], HEPING[2], UNKNOWN}
    dongcheng, chaoyang, heping = rows[DONGCHENG[2]], rows[CHAOYANG[2]], rows[HEPING[2]]
    assert (dongcheng["calls"], dongcheng["to_operators"], dongcheng["answered_15s"],
            dongcheng["abandoned"]) == (2, 2, 1, 1)
    assert (dongcheng["offered"], dongcheng["accepted"], dongcheng["arrivals_due"],
            dongcheng["on_time"], dongcheng["ratings"], dongcheng["rating_mean"]) == \
        (1, 1, 1, 1, 1, 5)
    assert dongcheng["care_due"] == 1 and dongcheng["care_reached"] == 1
    assert (chaoyang["alarms"], chaoyang["alarm_calls"], chaoyang["answered_60s"],
            chaoyang["answered_180s"], chaoyang["answered_15s"]) == (1, 1, 0, 1, 0)
    assert chaoyang["closed_accidental"] == 1 and chaoyang["orders_emergency"] == 1
    assert (chaoyang["offered"], chaoyang["accepted"]) == (1, 0)
    assert (chaoyang["care_due"], chaoyang["care_escalated"]) == (1, 1)
    # the engine's own call-back is not a call to the operators; a skipped round not due
    assert heping["calls"] == 2 and heping["to_operators"] == 0
    assert (heping["on_time"], heping["arrivals_due"]) == (0, 1)
    assert heping["complaints"] == 1 and heping["care_due"] == 0
    assert rows[UNKNOWN] == {"calls": 1, "to_operators": 1, "answered_15s": 1}


async def test_an_area_keeps_its_own_regions_and_the_levels_add_up(
        elders: dict[str, int], db_session: AsyncSession) -> None:
    area = area_of(DONGCHENG[0])  # the province of Dongcheng and Chaoyang
    assert area == RegionScope(RegionLevel.PROVINCE, DONGCHENG[0])
    counties = await region_stats(db_session, RegionLevel.COUNTY, area, SINCE, UNTIL)
    assert [row.region for row in counties.rows] == sorted([DONGCHENG[2], CHAOYANG[2]])
    cities = await region_stats(db_session, RegionLevel.CITY, area, SINCE, UNTIL)
    assert [row.region for row in cities.rows] == [DONGCHENG[1]]
    assert counties.total().cells()[1:] == cities.total().cells()[1:]
    assert cities.rows[0].cells()[1:] == counties.total().cells()[1:]
    everywhere = await region_stats(db_session, RegionLevel.PROVINCE, None, SINCE, UNTIL)
    by_county = await region_stats(db_session, RegionLevel.COUNTY, None, SINCE, UNTIL)
    assert everywhere.total().cells()[1:] == by_county.total().cells()[1:]
    assert everywhere.total().values["rating_mean"] == pytest.approx(3.5)
    with pytest.raises(ValueError, match="no province rows"):
        await region_stats(db_session, RegionLevel.PROVINCE, area_of(CHAOYANG[2]), SINCE,
                           UNTIL)
    for bad in ("62000", "abcdef", "town:620000"):
        with pytest.raises(ValueError):
            area_of(bad)


def test_the_command_writes_the_table_as_csv_and_xlsx(
        elders: dict[str, int], migrated_db_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text(f'[database]\nurl = "{migrated_db_url}"\n[ami]\nenabled = false\n',
                      encoding="utf-8")

    def report(*args: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), "report", "stats", "--from", SINCE.isoformat(),
                     "--to", UNTIL.isoformat(), "--out", str(tmp_path / "out"), *args])
        shown = capsys.readouterr()
        return code, shown.out, shown.err

    code, out, err = report("--level", "county")
    assert code == 0, err
    assert f"{DONGCHENG[2]}:" in out and "answered within 15 s 50.0 %" in out
    code, out, err = report("--level", "city", "--region", DONGCHENG[0], "--format", "csv")
    assert code == 0, err
    with Path(out.strip()).open(encoding="utf-8-sig") as handle:
        table = list(csv.reader(handle))
    assert table[0] == list(COLUMNS)
    assert [row[0] for row in table[1:]] == [DONGCHENG[1], "total"]
    assert table[1][COLUMNS.index("calls")] == "3"  # Dongcheng's two and Chaoyang's one
    code, out, err = report("--level", "county", "--format", "xlsx")
    assert code == 0, err
    with zipfile.ZipFile(out.strip()) as book:  # constant memory: strings inline
        sheet = book.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert all(f">{name}<" in sheet for name in (*COLUMNS, "total", UNKNOWN, HEPING[2]))
    assert sheet.count("<row ") == 1 + 4 + 1  # three counties, the unknown callers, the total
    code, _out, err = report("--region", "town:1", "--format", "csv")
    assert code == 2 and "region" in err


def test_rows_are_cells_in_column_order() -> None:
    from dispatch.region_stats import RegionRow, RegionStats

    row = RegionRow("110101")
    row.values.update({"calls": 3, "rating_mean": 4.333})
    stats = RegionStats(RegionLevel.COUNTY, None, SINCE, UNTIL, [row])
    table = stats_table(stats)
    assert len(table[0]) == len(COLUMNS) and table[0][1] == 3
    assert table[0][COLUMNS.index("rating_mean")] == 4.33
    assert table[-1][0] == "total"
