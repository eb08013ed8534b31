"""Alarm boxes end to end on SQLite and PostgreSQL: spool files written by the simulator's
base units become alarm events, emergency orders, test reports and operator alerts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import dispatch.alarms
from dispatch.alarm_codes import (
    CodeMap,
    CodeMapError,
    load_code_map,
    parse_code_map,
)
from dispatch.alarm_spool import SpoolFileError, read_spool_file
from dispatch.alarms import (
    IngestReport,
    _quarantine,
    _record_file,
    add_device,
    decide,
    ingest_spool,
    silent_devices,
)
from dispatch.contact_id import Qualifier
from dispatch.db import async_sessionmaker_for, make_async_engine
from dispatch.models import (
    AlarmAction,
    AlarmDevice,
    AlarmEvent,
    AlarmFile,
    AlarmKind,
    Elder,
    ElderPhone,
    OrderEvent,
    OrderSource,
    PhoneKind,
    ServiceType,
    WorkOrder,
)
from sim.alarm_box import AlarmBox, BoxEvent, Corruption, message, render, write_spool_file
from tests.file_limits import no_file_growth

# The frozen clock of these tests: the engine clock (``now``), the wall clock the spool's
# file times are compared with (``wall_time``) and those file times all derive from it.
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
ELDER_LINE = "13912345678"
CODES = load_code_map()


def aged(path: Path, seconds: float = 60.0, *, follow_symlinks: bool = True) -> Path:
    """Date ``path`` ``seconds`` before the frozen ``NOW``."""
    past = NOW.timestamp() - seconds
    os.utime(path, (past, past), follow_symlinks=follow_symlinks)
    return path


@pytest.fixture
def sessions(db_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker_for(db_engine)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "alarm-spool"
    path.mkdir()
    return path


async def _elder(session: AsyncSession, name: str, line: str | None = None) -> int:
    elder = Elder(name=name, created_at=NOW)
    if line:
        elder.phones.append(ElderPhone(number_e164=line, kind=PhoneKind.LANDLINE))
    session.add(elder)
    await session.commit()
    return elder.id


def _engine_sessions(engine: AsyncEngine) -> Callable[[], Any]:
    """Sessions as the engine hands them out: one writer at a time on SQLite."""
    sessions = async_sessionmaker_for(engine)
    gate: Any = asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    @contextlib.asynccontextmanager
    async def writing() -> AsyncIterator[AsyncSession]:
        async with gate, sessions() as session:
            yield session

    return writing


async def _ingest(sessions: async_sessionmaker[AsyncSession], spool: Path,
                  now: datetime = NOW, codes: CodeMap = CODES, **kw) -> IngestReport:
    """Ingest with every clock frozen at ``now``: the engine's and the file times' wall."""
    return await ingest_spool(sessions, spool, now, codes, local_area_code="931",
                              wall_time=now.timestamp(), **kw)


async def _events(session: AsyncSession) -> list[AlarmEvent]:
    return list((await session.execute(select(AlarmEvent).order_by(AlarmEvent.id))).scalars())


async def _count(session: AsyncSession, model: type) -> int:
    return (await session.execute(select(func.count()).select_from(model))).scalar_one()


# -- pure decisions and code maps ----------------------------------------------------------

def test_decisions() -> None:
    new, restore, still = Qualifier.NEW, Qualifier.RESTORE, Qualifier.STILL_PRESENT
    assert decide(AlarmKind.PERSONAL_EMERGENCY, new, True) is AlarmAction.ORDER
    assert decide(AlarmKind.FALL, still, True) is AlarmAction.ORDER
    assert decide(AlarmKind.UNKNOWN, new, True) is AlarmAction.ORDER
    assert decide(AlarmKind.MEDICAL, new, False) is AlarmAction.ALERT
    assert decide(AlarmKind.MEDICAL, restore, True) is AlarmAction.RECORD
    assert decide(AlarmKind.PERIODIC_TEST, new, True) is AlarmAction.TEST
    assert decide(AlarmKind.MANUAL_TEST, new, False) is AlarmAction.TEST
    assert decide(AlarmKind.LOW_BATTERY, new, True) is AlarmAction.ALERT
    assert decide(AlarmKind.LISTEN_IN, new, True) is AlarmAction.RECORD


def test_default_code_map_and_model_overrides() -> None:
    assert CODES.kind(None, "101") is AlarmKind.PERSONAL_EMERGENCY
    assert CODES.kind(None, "100") is AlarmKind.MEDICAL
    assert CODES.kind(None, "641") is AlarmKind.INACTIVITY
    assert CODES.kind(None, "384") is AlarmKind.LOW_BATTERY
    assert CODES.kind("any", "120") is AlarmKind.PERSONAL_EMERGENCY
    assert CODES.kind("FALL-120", "120") is AlarmKind.FALL
    assert CODES.kind("FALL-120", "602") is AlarmKind.PERIODIC_TEST
    assert CODES.kind(None, "999") is AlarmKind.UNKNOWN


@pytest.mark.parametrize(("text", "needle"), [
    ("[codes\n", "not valid TOML"),
    ('[codes]\n"12" = "fall"\n', "not a 3-digit"),
    ('[codes]\n"101" = "panic"\n', "unknown kind 'panic'"),
    ('[codes]\n"101" = "unknown"\n', "unknown kind 'unknown'"),
    ('[extra]\n"101" = "fall"\n', "unexpected table"),
    ('models = 3\n', "models must be a table"),
    ('[models]\nX = 3\n', "models.X must be a table"),
])
def test_code_map_errors(text: str, needle: str) -> None:
    with pytest.raises(CodeMapError, match=needle):
        parse_code_map(text)


def test_code_map_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CodeMapError, match="cannot read"):
        load_code_map(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(CodeMapError, match="not UTF-8"):
        load_code_map(bad)
    mine = tmp_path / "mine.toml"
    mine.write_text('[codes]\n"101" = "fall"\n[models.P2]\n"101" = "medical"\n')
    loaded = load_code_map(mine)
    assert loaded.kind(None, "101") is AlarmKind.FALL
    assert loaded.kind("P2", "101") is AlarmKind.MEDICAL
    assert loaded.kind(None, "100") is AlarmKind.UNKNOWN


# -- ingestion on both backends ------------------------------------------------------------

async def test_alarms_become_orders_tests_alerts_and_records(
    db_session: AsyncSession, sessions: async_sessionmaker[AsyncSession], spool: Path
) -> None:
    grandma = await _elder(db_session, "王秀英")
    grandpa = await _elder(db_session, "李建国", "+86" + ELDER_LINE)
    device = await add_device(db_session, account="1234", model="FALL-120", elder_id=grandma,
                              line_e164="+8613800001111", registered_at=NOW)
    pendant = AlarmBox("1234", line="13800001111")
    files = {
        "emergency": pendant.report(spool, [BoxEvent("101", zone="015"),
                                            BoxEvent("606")]),
        "fall": pendant.report(spool, [BoxEvent("120")]),
        "restore": pendant.report(spool, [BoxEvent("101", qualifier=3)]),
        "test": pendant.report(spool, [BoxEvent("602")]),
        "battery": pendant.report(spool, [BoxEvent("302", zone="002")]),
        "strange": pendant.report(spool, [BoxEvent("1C9")]),
        # unregistered boxes: one on the line of a registered elder, one on nobody's line
        "known_line": AlarmBox("BEEF", line=ELDER_LINE).report(spool, [BoxEvent("100")]),
        "nobody": AlarmBox("4321", line="13700002222").report(spool, [BoxEvent("101")]),
    }
    for path in files.values():
        aged(path)

    report = await _ingest(sessions, spool)

    assert sorted(report.ingested) == sorted(p.name for p in files.values())
    assert report.quarantined == [] and report.failed == [] and report.events == 9
    assert sorted(p.name for p in (spool / "processed").iterdir()) == sorted(report.ingested)
    assert [p for p in spool.iterdir() if p.is_file()] == []

    by_file = {}
    for event in await _events(db_session):
        name = (await db_session.get(AlarmFile, event.file_id)).name
        by_file.setdefault(name, []).append(event)
    emergency, listen_in = by_file[files["emergency"].name]
    assert (emergency.kind, emergency.action, emergency.zone, emergency.device_id,
            emergency.elder_id) == (AlarmKind.PERSONAL_EMERGENCY, AlarmAction.ORDER, "015",
                                    device.id, grandma)
    assert listen_in.kind is AlarmKind.LISTEN_IN and listen_in.action is AlarmAction.RECORD
    assert by_file[files["fall"].name][0].kind is AlarmKind.FALL
    restore = by_file[files["restore"].name][0]
    assert (restore.qualifier, restore.action, restore.order_id) == (3, AlarmAction.RECORD,
                                                                      None)
    assert by_file[files["test"].name][0].action is AlarmAction.TEST
    assert by_file[files["strange"].name][0].kind is AlarmKind.UNKNOWN
    via_line = by_file[files["known_line"].name][0]
    assert (via_line.device_id, via_line.elder_id, via_line.kind) == (None, grandpa,
                                                                      AlarmKind.MEDICAL)
    orphan = by_file[files["nobody"].name][0]
    assert (orphan.device_id, orphan.elder_id, orphan.action, orphan.order_id) == (
        None, None, AlarmAction.ALERT, None)
    assert all(e.handled_at == NOW for events in by_file.values() for e in events)

    # one emergency order per alarm call: emergency, fall, strange code, known line
    assert len(report.orders) == 4
    assert {o.elder_id for o in report.orders} == {grandma, grandpa}
    orders = (await db_session.execute(select(WorkOrder))).scalars().all()
    assert len(orders) == 4
    assert all((o.service, o.priority, o.source) == (ServiceType.EMERGENCY, 0,
                                                      OrderSource.HANDSET) for o in orders)
    first = next(o for o in report.orders if emergency.id in o.event_ids)
    assert first.event_ids == (emergency.id,) and emergency.order_id == first.order_id
    timeline = (await db_session.execute(
        select(OrderEvent).where(OrderEvent.order_id == first.order_id)
        .order_by(OrderEvent.id))).scalars().all()
    assert [e.kind for e in timeline] == ["created", "alarm"]
    assert timeline[1].detail == {
        "account": "1234", "file": files["emergency"].name, "event_ids": [emergency.id],
        "codes": ["101"], "kinds": ["personal_emergency"], "zones": ["015"]}

    reasons = sorted((a.reason, a.account, str(a.kind)) for a in report.alerts)
    assert reasons == [("device_trouble", "1234", "low_battery"),
                       ("unidentified_alarm", "4321", "personal_emergency")]
    orphan_alert = next(a for a in report.alerts if a.reason == "unidentified_alarm")
    assert orphan_alert.calling_from == "13700002222" and orphan_alert.event_id == orphan.id

    tested = await db_session.get(AlarmDevice, device.id)
    await db_session.refresh(tested)
    assert tested.last_test_at == read_spool_file(
        spool / "processed" / files["test"].name).received_at

    again = await _ingest(sessions, spool)  # nothing new: nothing repeated
    assert (again.ingested, again.orders, again.alerts) == ([], [], [])
    missing = await _ingest(sessions, spool / "absent")
    assert "cannot list the spool" in missing.failed[0][1]


async def test_bad_files_are_quarantined_with_reasons_and_alerts(
    db_session: AsyncSession, sessions: async_sessionmaker[AsyncSession], spool: Path
) -> None:
    good = [message("1234", BoxEvent("101"))]
    made = {corrupt: aged(write_spool_file(spool, render(good, "13700002222", corrupt=corrupt)))
            for corrupt in Corruption}
    link = spool / "event-link1"
    link.symlink_to(spool / "nowhere")  # quarantined without being followed
    aged(link, follow_symlinks=False)

    report = await _ingest(sessions, spool)

    reasons = dict(report.quarantined)
    assert "bad checksum" in reasons[made[Corruption.BAD_CHECKSUM].name]
    assert "last line has no line end" in reasons[made[Corruption.TRUNCATED].name]
    assert "no [events] section" in reasons[made[Corruption.NO_EVENTS].name]
    assert "not UTF-8" in reasons[made[Corruption.NOT_UTF8].name]
    assert "symbolic link" in reasons["event-link1"]
    quarantine_dir = spool / "quarantine"
    for name, reason in report.quarantined:
        assert (quarantine_dir / f"{name}.reason").read_text(encoding="utf-8") == reason + "\n"
        assert (quarantine_dir / name).is_symlink() or (quarantine_dir / name).stat().st_size
    assert sorted(p.name for p in spool.iterdir()) == ["quarantine"]
    assert {a.reason for a in report.alerts} == {"quarantined_file"}
    assert len(report.alerts) == 5
    assert next(a for a in report.alerts if a.file_name == made[Corruption.BAD_CHECKSUM].name
                ).calling_from == "13700002222"
    assert await _count(db_session, AlarmFile) == 0
    assert await _count(db_session, WorkOrder) == 0


async def test_half_written_file_waits_then_is_ingested(
    db_session: AsyncSession, sessions: async_sessionmaker[AsyncSession], spool: Path
) -> None:
    elder = await _elder(db_session, "赵桂兰")
    await add_device(db_session, account="2468", model="P1", elder_id=elder, line_e164=None,
                     registered_at=NOW)
    data = render([message("2468", BoxEvent("101"))], "13800001111")
    path = aged(write_spool_file(spool, data[: len(data) // 2]), 0)  # AlarmReceiver writing

    report = await _ingest(sessions, spool, min_age_s=30)
    assert report.waiting == [path.name] and report.ingested == report.quarantined == []
    assert path.exists() and await _count(db_session, AlarmEvent) == 0

    with path.open("ab") as handle:
        handle.write(data[len(data) // 2:])
    aged(path, 31)
    report = await _ingest(sessions, spool, min_age_s=30)
    assert report.ingested == [path.name] and len(report.orders) == 1
    assert report.orders[0].elder_id == elder


async def test_slowly_written_file_is_not_quarantined_and_becomes_an_order(
    db_session: AsyncSession, sessions: async_sessionmaker[AsyncSession], spool: Path
) -> None:
    elder = await _elder(db_session, "赵桂兰")
    await add_device(db_session, account="2468", model="P1", elder_id=elder, line_e164=None,
                     registered_at=NOW)
    data = render([message("2468", BoxEvent("101"))], "13800001111")
    # the writer paused longer than min_age_s, within the grace for incomplete files
    path = aged(write_spool_file(spool, data[: len(data) - 6]), 5)

    report = await _ingest(sessions, spool, min_age_s=2, incomplete_grace_s=30)
    assert report.waiting == [path.name] and report.quarantined == report.alerts == []
    assert path.exists() and not (spool / "quarantine").exists()

    with path.open("ab") as handle:
        handle.write(data[len(data) - 6:])
    aged(path, 3)
    report = await _ingest(sessions, spool, min_age_s=2, incomplete_grace_s=30)
    assert report.ingested == [path.name] and len(report.orders) == 1
    assert report.orders[0].elder_id == elder

    # a file that stays incomplete past the grace is quarantined, with its alert
    stuck = aged(write_spool_file(spool, data[: len(data) - 6]), 31)
    report = await _ingest(sessions, spool, min_age_s=2, incomplete_grace_s=30)
    assert report.quarantined == [(stuck.name, "truncated: the last line has no line end")]
    assert [a.reason for a in report.alerts] == ["quarantined_file"]


async def test_a_file_name_that_is_not_utf8_blocks_no_order(
    db_session: AsyncSession, sessions: async_sessionmaker[AsyncSession], spool: Path
) -> None:
    elder = await _elder(db_session, "张秀英")
    await add_device(db_session, account="1234", model="P1", elder_id=elder, line_e164=None,
                     registered_at=NOW)
    real = aged(AlarmBox("1234").report(spool, [BoxEvent("101")]), 120)
    odd = spool / os.fsdecode(b"event-\xb3\xc2")
    odd.write_bytes(render([message("1234", BoxEvent("101"))], "13700002222"))
    aged(odd, 60)

    report = await _ingest(sessions, spool)

    assert report.ingested == [real.name] and report.failed == []
    assert [o.elder_id for o in report.orders] == [elder]
    assert report.quarantined == [("event-\\xb3\\xc2",
                                   "file name event-\\xb3\\xc2 is not valid UTF-8")]
    [alert] = report.alerts
    assert (alert.reason, alert.file_name, alert.calling_from) == (
        "quarantined_file", "event-\\xb3\\xc2", "13700002222")
    quarantined = spool / "quarantine"
    assert sorted(p.name for p in quarantined.iterdir()) == ["event-_xb3_xc2",
                                                             "event-_xb3_xc2.reason"]
    assert (quarantined / "event-_xb3_xc2.reason").read_text(encoding="utf-8") == (
        "file name event-\\xb3\\xc2 is not valid UTF-8\n")
    assert sorted(p.name for p in spool.iterdir()) == ["processed", "quarantine"]
    again = await _ingest(sessions, spool)
    assert (again.ingested, again.quarantined, again.orders, again.failed) == ([], [], [], [])


async def test_an_unforeseen_error_stays_with_its_file(
    db_session: AsyncSession, sessions: async_sessionmaker[AsyncSession], spool: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elder = await _elder(db_session, "钱淑芬")
    await add_device(db_session, account="1234", model="P1", elder_id=elder, line_e164=None,
                     registered_at=NOW)
    unreadable = aged(AlarmBox("1234").report(spool, [BoxEvent("101")]), 300)
    unrecordable = aged(AlarmBox("1234").report(spool, [BoxEvent("101")]), 200)
    good = aged(AlarmBox("1234").report(spool, [BoxEvent("101")]), 100)
    real_read, real_record = dispatch.alarms.read_spool_file, dispatch.alarms._record_file

    def read(path: Path) -> Any:
        if path.name == unreadable.name:
            raise LookupError("a defect nobody foresaw")
        return real_read(path)

    async def record(session: AsyncSession, spool_file: Any, *args: Any) -> int | None:
        if spool_file.name == unrecordable.name:
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "a driver's complaint")
        return await real_record(session, spool_file, *args)

    monkeypatch.setattr(dispatch.alarms, "read_spool_file", read)
    monkeypatch.setattr(dispatch.alarms, "_record_file", record)
    report = await _ingest(sessions, spool)

    assert report.ingested == [good.name] and [o.elder_id for o in report.orders] == [elder]
    assert report.quarantined == [(unreadable.name, "cannot be read: LookupError")]
    assert report.failed == [(unrecordable.name, "unexpected error: UnicodeEncodeError")]
    assert unrecordable.exists()  # left for the next scan


async def test_names_in_logs_are_escaped(
    sessions: async_sessionmaker[AsyncSession], spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    forged = spool / "event-x\n2026-11-23 08:00:00 ERROR forged"
    forged.write_bytes(b"garbage\n")
    aged(forged)
    with caplog.at_level(logging.INFO, logger="dispatch.alarms"):
        report = await _ingest(sessions, spool)
    assert report.quarantined == [("event-x\\n2026-11-23 08:00:00 ERROR forged",
                                   "line 1: unexpected metadata line 'garbage'")]
    messages = [r.getMessage() for r in caplog.records if r.name == "dispatch.alarms"]
    assert messages and all("\n" not in m for m in messages)
    assert any("event-x\\n2026-11-23 08:00:00 ERROR forged" in m for m in messages)
    assert sorted(p.name for p in (spool / "quarantine").iterdir()) == [
        "event-x_n2026-11-23_08_00_00_ERROR_forged",
        "event-x_n2026-11-23_08_00_00_ERROR_forged.reason"]


def test_a_full_disk_while_quarantining_still_raises_the_alert(
    spool: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = aged(write_spool_file(spool, b"garbage\n"))
    report = IngestReport()
    error = SpoolFileError("bad checksum", "13700002222")
    with caplog.at_level(logging.ERROR, logger="dispatch.alarms"), no_file_growth():
        _quarantine(path, error, report)
    assert sorted(p.name for p in (spool / "quarantine").iterdir()) == [path.name]
    assert report.quarantined == [(path.name, "bad checksum")]
    [alert] = report.alerts
    assert alert.reason == "quarantined_file" and alert.calling_from == "13700002222"
    assert alert.detail.startswith("bad checksum (reason note not written: ")
    assert any("without its reason note" in r.getMessage() for r in caplog.records)


async def test_restart_does_not_ingest_twice(
    migrated_db_url: str, spool: Path
) -> None:
    code_path = spool.parent / "codes.toml"
    shutil.copy(Path(__file__).resolve().parents[1] / "dispatch" / "alarm_codes.toml",
                code_path)
    engine = make_async_engine(migrated_db_url, pool_size=2)
    try:
        sessions = async_sessionmaker_for(engine)
        async with sessions() as session:
            elder = await _elder(session, "周淑珍")
            await add_device(session, account="1357", model="P1", elder_id=elder,
                             line_e164=None, registered_at=NOW)
        path = aged(AlarmBox("1357").report(spool, [BoxEvent("101")]))
        spool_file = read_spool_file(path)
        # a crash after recording, before the order and before the move:
        async with sessions() as session:
            assert await _record_file(session, spool_file, NOW, CODES, "931") == 1
    finally:
        await engine.dispose()

    engine = make_async_engine(migrated_db_url, pool_size=2)  # the restarted engine
    try:
        sessions = async_sessionmaker_for(engine)
        report = await _ingest(sessions, spool, NOW + timedelta(seconds=5),
                               load_code_map(code_path))
        assert report.duplicates == [path.name] and report.ingested == []
        assert len(report.orders) == 1  # the pending order is opened now
        # the same file shows up again (restored from a backup): still nothing new
        shutil.copy2(spool / "processed" / path.name, spool / path.name)
        report = await _ingest(sessions, spool, NOW + timedelta(seconds=10))
        assert report.duplicates == [path.name] and report.orders == []
        async with sessions() as session:
            assert await _count(session, AlarmFile) == 1
            assert await _count(session, AlarmEvent) == 1
            assert await _count(session, WorkOrder) == 1
        assert sorted(p.name for p in (spool / "processed").iterdir()) == [
            path.name, f"{path.name}.1"]
    finally:
        await engine.dispose()


async def test_concurrent_ingesters_open_each_order_once(
    db_session: AsyncSession, db_engine: AsyncEngine, spool: Path
) -> None:
    elder = await _elder(db_session, "吴玉梅")
    await add_device(db_session, account="9876", model="P1", elder_id=elder, line_e164=None,
                     registered_at=NOW)
    for _ in range(4):
        aged(AlarmBox("9876").report(spool, [BoxEvent("101")]))
    aged(AlarmBox("5555").report(spool, [BoxEvent("101")]))
    sessions = _engine_sessions(db_engine)
    reports = await asyncio.gather(*(_ingest(sessions, spool) for _ in range(3)))
    assert sum(len(r.orders) for r in reports) == 4
    assert sum(len(r.alerts) for r in reports) == 1
    assert await _count(db_session, WorkOrder) == 4
    assert await _count(db_session, AlarmFile) == 5
    assert len(list((spool / "processed").iterdir())) == 5


async def test_silent_devices(db_session: AsyncSession, sessions, spool: Path) -> None:
    elder = await _elder(db_session, "郑丽华")
    daily = await add_device(db_session, account="1111", model="P1", elder_id=elder,
                             line_e164=None, registered_at=NOW - timedelta(days=3))
    weekly = await add_device(db_session, account="2222", model="P1", elder_id=elder,
                              line_e164=None, registered_at=NOW - timedelta(days=3),
                              test_interval_hours=24 * 7)
    assert [s.device_id for s in await silent_devices(db_session, NOW)] == [daily.id]

    path = AlarmBox("1111").report(spool, [BoxEvent("602")])
    aged(path, 3600)
    await _ingest(sessions, spool)
    assert await silent_devices(db_session, NOW) == []
    later = await silent_devices(db_session, NOW + timedelta(days=2))
    assert [s.device_id for s in later] == [daily.id]
    assert later[0].last_test_at is not None
    assert later[0].due_at == later[0].last_test_at + timedelta(hours=24)
    assert [s.device_id for s in await silent_devices(db_session, NOW + timedelta(days=5))
            ] == [daily.id, weekly.id]


async def test_add_device_validates(db_session: AsyncSession) -> None:
    elder = await _elder(db_session, "孙志强")
    for kwargs, needle in (({"account": "12A4"}, "account"), ({"account": "123"}, "account"),
                           ({"test_interval_hours": 0}, "test_interval_hours"),
                           ({"model": ""}, "model")):
        args = {"account": "1234", "model": "P1", **kwargs}
        with pytest.raises(ValueError, match=needle):
            await add_device(db_session, elder_id=elder, line_e164=None, registered_at=NOW,
                             **args)
