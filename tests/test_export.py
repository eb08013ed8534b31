"""The export to the province and its import: two county platforms each export their data
(JSON Lines checked against the JSON Schemas in docs/export/), a second export writes nothing
new, an export run again gives the same bytes, a change after the watermark is the next
batch; the province imports the batches of both (on SQLite and PostgreSQL), importing again
changes nothing, a tampered batch is refused whole, and the province's roll-up equals the
sums of the counties' own figures."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.citygen import generate_city
from dispatch.db import async_sessionmaker_for, make_async_engine, make_sync_engine, upgrade
from dispatch.export import ExportIdentity, export_batch
from dispatch.models import (
    Complaint,
    Elder,
    OrderEvent,
    OrderStatus,
    UpstreamBatch,
    UpstreamOrder,
    WorkOrder,
)
from dispatch.orders import ServiceType, create_order
from dispatch.upstream import BatchError, import_batch, import_upstream, province_rollup
from tests.storage import rows

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "export"
KEY = b"a province-wide pseudonym key"
START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def validators() -> dict[str, Draft202012Validator]:
    found = {}
    for path in SCHEMAS.glob("*.schema.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
        found[path.name.removesuffix(".schema.json")] = Draft202012Validator(
            schema, format_checker=FormatChecker())
    return found


async def county_platform(folder: Path, seed: int) -> str:
    """A county's database: a generated registry and 60 orders over a month, some completed
    and rated, poor ratings with complaints (some upheld)."""
    url = f"sqlite:///{folder / f'county{seed}.sqlite3'}"
    upgrade(url)
    generate_city(url, elders=120, vendors=4, seed=seed)
    engine = make_async_engine(url)
    try:
        async with async_sessionmaker_for(engine)() as session:
            elders = list((await session.scalars(select(Elder.id).order_by(Elder.id))).all())
            services = [ServiceType.MEAL, ServiceType.HOUSEKEEPING, ServiceType.HEALTH,
                        ServiceType.EMERGENCY]
            for index in range(60):
                at = START + timedelta(hours=7 * index + seed)
                order = await create_order(session, elder_id=elders[index % len(elders)],
                                           service=services[index % 4], source="phone",
                                           call_uniqueid=None, requested_by="elder", at=at)
                if index % 3:
                    await complete(session, order.id, at + timedelta(hours=2),
                                   rating=1 + (index + seed) % 5)
    finally:
        await engine.dispose()
    return url


async def complete(session: AsyncSession, order_id: int, at: datetime, rating: int) -> None:
    await session.execute(update(WorkOrder).where(WorkOrder.id == order_id).values(
        status=OrderStatus.COMPLETED, completed_at=at, rating=rating))
    session.add(OrderEvent(order_id=order_id, at=at, kind="completed", detail={}))
    if rating <= 2:
        session.add(Complaint(order_id=order_id, rating=rating, opened_at=at,
                              closed_at=at + timedelta(minutes=1), upheld=rating == 1))
    await session.commit()


async def export(url: str, out: Path, source: str, since: datetime | None, until: datetime
                 ) -> Any:
    engine = make_async_engine(url)
    try:
        async with async_sessionmaker_for(engine)() as session:
            return await export_batch(session, out, ExportIdentity(source, KEY), since, until)
    finally:
        await engine.dispose()


def own_figures(url: str) -> dict[str, int]:
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            def one(statement: Any) -> int:
                return int(conn.execute(statement).scalar_one() or 0)

            return {
                "elders": one(select(func.count()).select_from(Elder)),
                "orders": one(select(func.count()).select_from(WorkOrder)),
                "emergencies": one(select(func.count()).where(
                    WorkOrder.service == ServiceType.EMERGENCY)),
                "completed": one(select(func.count()).where(
                    WorkOrder.status == OrderStatus.COMPLETED)),
                "rating_sum": one(select(func.sum(WorkOrder.rating))),
                "complaints": one(select(func.count()).select_from(Complaint)),
                "upheld": one(select(func.count()).where(Complaint.upheld.is_(True))),
            }
    finally:
        engine.dispose()


def records(batch_folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {path.name.removesuffix("s.jsonl"): [json.loads(line) for line in
                                                 path.read_text(encoding="utf-8").splitlines()]
            for path in batch_folder.glob("*.jsonl")}


async def test_two_counties_export_and_the_province_adds_them_up(
        tmp_path: Path, db_session: AsyncSession, migrated_db_url: str) -> None:
    checks = validators()
    out = tmp_path / "outbox"
    first_url = await county_platform(tmp_path, 1)
    second_url = await county_platform(tmp_path, 2)
    watermark = datetime.now(UTC) - timedelta(minutes=1)

    first = await export(first_url, out, "620102", None, watermark)
    assert first is not None and first.records["orders.jsonl"] == 60
    assert await export(first_url, out / "again", "620102", watermark,
                        datetime.now(UTC)) is None  # nothing new
    copy = tmp_path / "copy"
    shutil.copytree(first.folder, copy)
    assert await export(first_url, out, "620102", None, watermark) is not None  # re-run
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == {
        p.name: p.read_bytes() for p in first.folder.iterdir()}  # byte for byte
    manifest = json.loads((first.folder / "manifest.json").read_text())
    checks["manifest"].validate(manifest)
    for kind, lines in records(first.folder).items():
        for record in lines:
            checks[kind].validate(record)
    exported = records(first.folder)
    assert not any("name" in elder or "phones" in elder for elder in exported["elder"])
    assert len({elder["id"] for elder in exported["elder"]}) == 120

    # a change after the watermark is the next batch, and only it
    engine = make_async_engine(first_url)
    try:
        async with async_sessionmaker_for(engine)() as session:
            open_order = await session.scalar(select(WorkOrder.id).where(
                WorkOrder.status != OrderStatus.COMPLETED).order_by(WorkOrder.id))
            assert open_order is not None
            await complete(session, open_order, datetime.now(UTC), rating=1)
    finally:
        await engine.dispose()
    later = datetime.now(UTC) + timedelta(minutes=5)
    second_batch = await export(first_url, out, "620102", watermark, later)
    assert second_batch is not None
    assert second_batch.records == {"elders.jsonl": 0, "vendors.jsonl": 0, "orders.jsonl": 1,
                                    "alarms.jsonl": 0, "complaints.jsonl": 1}
    other = await export(second_url, out, "620103", None, later)
    assert other is not None

    report = await import_upstream(db_session, out)
    assert sorted(report.imported) == sorted(
        [first.folder.name, second_batch.folder.name, other.folder.name])
    again = await import_upstream(db_session, out)
    assert again.imported == [] and len(again.skipped) == 3
    rows = await province_rollup(db_session)
    for source, url in (("620102", first_url), ("620103", second_url)):
        mine = [row for row in rows if row.source == source]
        assert {name: sum(getattr(row, name) for row in mine) for name in own_figures(url)} \
            == own_figures(url), source
    assert sum(row.orders for row in rows) == 120 and sum(row.elders for row in rows) == 240
    upgraded = await db_session.scalar(select(UpstreamOrder.status).where(
        UpstreamOrder.id == f"620102:{_order_no(first_url, open_order)}"))
    assert upgraded == "completed"  # the later batch's state


def _order_no(url: str, order_id: int) -> str:
    (order_no,), = rows(url, select(WorkOrder.order_no).where(WorkOrder.id == order_id))
    return str(order_no)


async def test_a_tampered_or_truncated_batch_is_refused_whole(
        tmp_path: Path, db_session: AsyncSession, migrated_db_url: str) -> None:
    url = await county_platform(tmp_path, 3)
    batch = await export(url, tmp_path / "out", "620104", None, datetime.now(UTC))
    assert batch is not None
    orders = batch.folder / "orders.jsonl"
    data = orders.read_bytes()
    orders.write_bytes(data.replace(b'"status":"completed"', b'"status":"cancelled"', 1))
    with pytest.raises(BatchError, match="checksum differs"):
        await import_batch(db_session, batch.folder, datetime.now(UTC))
    orders.write_bytes(data[: len(data) // 2])
    with pytest.raises(BatchError, match="truncated or altered"):
        await import_batch(db_session, batch.folder, datetime.now(UTC))
    assert await db_session.scalar(select(func.count()).select_from(UpstreamOrder)) == 0
    assert await db_session.scalar(select(func.count()).select_from(UpstreamBatch)) == 0
    orders.write_bytes(data)
    assert await import_batch(db_session, batch.folder, datetime.now(UTC)) == sum(
        batch.records.values())


@pytest.mark.parametrize(("env", "args", "message"), [
    ({}, [], "pseudonym_key must be set"),
    ({"HOTLINE_EXPORT__PSEUDONYM_KEY": KEY.decode()}, ["--source", "6201"],
     "six-digit region code"),
    ({"HOTLINE_EXPORT__PSEUDONYM_KEY": KEY.decode()}, ["--since", "yesterday"],
     "not a watermark"),
    ({"HOTLINE_EXPORT__PSEUDONYM_KEY": KEY.decode()},
     ["--since", "2026-12-02T00:00:00+00:00", "--until", "2026-12-01T00:00:00+00:00"],
     "since must be before until"),
])
def test_the_export_command_refuses_bad_settings_clearly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        env: dict[str, str], args: list[str], message: str) -> None:
    from ivr.cli import main

    for name, value in {"HOTLINE_DATABASE__URL": f"sqlite:///{tmp_path / 'c.sqlite3'}",
                        "HOTLINE_AMI__ENABLED": "false", "HOTLINE_CONFIG": "",
                        "HOTLINE_EXPORT__SOURCE": "620102", **env}.items():
        monkeypatch.setenv(name, value)
    assert main(["export", "--out", str(tmp_path / "out"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_the_import_command_refuses_a_folder_that_is_not_a_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.cli import main

    monkeypatch.setenv("HOTLINE_DATABASE__URL", f"sqlite:///{tmp_path / 'p.sqlite3'}")
    monkeypatch.setenv("HOTLINE_AMI__ENABLED", "false")
    monkeypatch.setenv("HOTLINE_CONFIG", "")
    batch = tmp_path / "batches" / "620102-x"
    batch.mkdir(parents=True)
    (batch / "manifest.json").write_text('{"format": "something/9"}')
    assert main(["import-upstream", str(tmp_path / "batches")]) == 1
    assert "not a hotline-export/1 batch" in capsys.readouterr().err
    (batch / "manifest.json").write_text("[1, 2")
    assert main(["import-upstream", str(tmp_path / "batches")]) == 1
    assert "not JSON" in capsys.readouterr().err
    assert main(["import-upstream", str(tmp_path / "nowhere")]) == 1
