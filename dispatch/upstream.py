"""The province's side of the export (``hotline import-upstream DIR``): the batches of several
county platforms merged into one database, and the province's roll-up of them.

Each batch folder (``dispatch/export.py``) is checked before anything is written: its
manifest's format, each file's size and SHA-256, each record's type and source. A batch is
imported in one transaction, so it is all there or not at all; a batch already imported (same
name, same manifest) is skipped, so importing a folder again changes nothing. Records are
upserted by id; a record keeps the state of the latest batch that carried it (``as_of``, the
batch's watermark), so batches imported out of order never turn an order back. Files are read
line by line and written in chunks: memory stays flat in the number of records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.export import FORMAT, MANIFEST, RECORD_FILES, ExportError
from dispatch.models import (
    UpstreamAlarm,
    UpstreamBatch,
    UpstreamComplaint,
    UpstreamElder,
    UpstreamOrder,
    UpstreamVendor,
)

CHUNK = 1000
MAX_LINE = 1 << 20
TABLES: dict[str, Any] = {
    "elders.jsonl": UpstreamElder, "vendors.jsonl": UpstreamVendor,
    "orders.jsonl": UpstreamOrder, "alarms.jsonl": UpstreamAlarm,
    "complaints.jsonl": UpstreamComplaint,
}
STAMPS = {"registered_at", "created_at", "accepted_at", "arrived_at", "completed_at",
          "received_at", "handled_at", "opened_at", "closed_at"}


class BatchError(ExportError):
    """A batch folder that is not a complete, intact hotline-export/1 batch."""


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)  # batch names
    skipped: list[str] = field(default_factory=list)  # already imported
    records: int = 0


def batch_folders(root: Path) -> list[Path]:
    """The batch folders under ``root`` (or ``root`` itself), oldest watermark first."""
    root = Path(root)
    if (root / MANIFEST).is_file():
        return [root]
    folders = [path for path in root.iterdir()
               if path.is_dir() and not path.name.startswith(".") and (path / MANIFEST).is_file()]
    return sorted(folders, key=lambda path: (path.name.split("-", 1)[-1], path.name))


def read_manifest(folder: Path) -> tuple[dict[str, Any], str]:
    """The checked manifest and its SHA-256; BatchError naming what is wrong."""
    data = (folder / MANIFEST).read_bytes()
    manifest = _json_object(data, f"{folder.name}/{MANIFEST}")
    if manifest.get("format") != FORMAT:
        raise BatchError(f"{folder.name}: not a {FORMAT} batch")
    source = manifest.get("source")
    if not (isinstance(source, str) and len(source) == 6 and source.isdigit()):
        raise BatchError(f"{folder.name}: the manifest names no six-digit source")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) - set(RECORD_FILES):
        raise BatchError(f"{folder.name}: the manifest lists unknown files")
    for name, entry in files.items():
        _check_file(folder / name, entry)
    return manifest, hashlib.sha256(data).hexdigest()


def _json_object(data: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BatchError(f"{where}: not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BatchError(f"{where}: not a JSON object")
    return value


def _check_file(path: Path, entry: Any) -> None:
    if not isinstance(entry, dict) or not path.is_file():
        raise BatchError(f"{path.parent.name}/{path.name}: missing")
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
    if size != entry.get("bytes") or digest.hexdigest() != entry.get("sha256"):
        raise BatchError(f"{path.parent.name}/{path.name}: size or checksum differs from "
                         "the manifest (truncated or altered)")


def _records(path: Path, source: str, as_of: datetime) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if len(line) > MAX_LINE:
                raise BatchError(f"{path.name}:{number}: line too long")
            record = _json_object(line, f"{path.name}:{number}")
            if record.get("source") != source:
                raise BatchError(f"{path.name}:{number}: not a record of source {source}")
            yield _row(path.name, record, as_of)


def _row(file_name: str, record: dict[str, Any], as_of: datetime) -> dict[str, Any]:
    row = {key: (datetime.fromisoformat(value) if key in STAMPS and value else value)
           for key, value in record.items()}
    row["as_of"] = as_of
    if file_name == "elders.jsonl":
        region = row.pop("region", None) or {}
        row.update(province=region.get("province"), city=region.get("city"),
                   county=region.get("county"))
        row.pop("name", None)  # personal data is not merged at the province
        row.pop("phones", None)
    return row


def _upsert(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> Any:
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table.__table__).values(rows)
    columns = {name: statement.excluded[name] for name in rows[0] if name != "id"}
    return statement.on_conflict_do_update(
        index_elements=["id"], set_=columns,
        where=table.__table__.c.as_of <= statement.excluded.as_of)


async def import_batch(session: AsyncSession, folder: Path, now: datetime) -> int | None:
    """Import one checked batch in one transaction; its record count, or None if it was
    imported before. BatchError (nothing written) if it is not intact."""
    manifest, digest = read_manifest(folder)
    done = await session.get(UpstreamBatch, folder.name)
    if done is not None:
        if done.manifest_sha256 != digest:
            raise BatchError(f"{folder.name}: imported before with another manifest")
        return None
    until = datetime.fromisoformat(manifest["until"])
    count = 0
    try:
        for file_name in RECORD_FILES:
            if file_name not in manifest["files"]:
                continue
            chunk: list[dict[str, Any]] = []
            for row in _records(folder / file_name, manifest["source"], until):
                chunk.append(row)
                if len(chunk) == CHUNK:
                    await session.execute(_upsert(session, TABLES[file_name], chunk))
                    count += len(chunk)
                    chunk = []
            if chunk:
                await session.execute(_upsert(session, TABLES[file_name], chunk))
                count += len(chunk)
        session.add(UpstreamBatch(
            name=folder.name, source=manifest["source"],
            since=datetime.fromisoformat(manifest["since"]) if manifest["since"] else None,
            until=until, manifest_sha256=digest, records=count, imported_at=now))
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return count


async def import_upstream(session: AsyncSession, root: Path) -> ImportReport:
    """Every batch under ``root``, oldest first."""
    report = ImportReport()
    for folder in batch_folders(root):
        count = await import_batch(session, folder, datetime.now(UTC))
        if count is None:
            report.skipped.append(folder.name)
        else:
            report.imported.append(folder.name)
            report.records += count
    return report


@dataclass(frozen=True, slots=True)
class RollupRow:
    source: str
    county: str | None
    elders: int
    orders: int
    emergencies: int
    completed: int
    rated: int
    rating_sum: int
    complaints: int
    upheld: int
    alarms: int

    @property
    def mean_rating(self) -> float | None:
        return self.rating_sum / self.rated if self.rated else None


async def province_rollup(session: AsyncSession) -> list[RollupRow]:
    """Per platform and county: elders, orders, emergencies, completed, ratings, complaints
    (upheld), alarms, from what the batches brought."""
    elders = dict(((s, c), n) for s, c, n in (await session.execute(
        select(UpstreamElder.source, UpstreamElder.county, func.count())
        .group_by(UpstreamElder.source, UpstreamElder.county))).all())
    orders = {(s, c): row for s, c, *row in (await session.execute(
        select(UpstreamOrder.source, UpstreamOrder.county, func.count(),
               func.sum(case((UpstreamOrder.service == "emergency", 1), else_=0)),
               func.sum(case((UpstreamOrder.status == "completed", 1), else_=0)),
               func.count(UpstreamOrder.rating),
               func.coalesce(func.sum(UpstreamOrder.rating), 0))
        .group_by(UpstreamOrder.source, UpstreamOrder.county))).all()}
    complaints = {(s, c): (n, u) for s, c, n, u in (await session.execute(
        select(UpstreamOrder.source, UpstreamOrder.county, func.count(),
               func.sum(case((UpstreamComplaint.upheld.is_(True), 1), else_=0)))
        .join(UpstreamOrder, UpstreamOrder.id == UpstreamComplaint.order)
        .group_by(UpstreamOrder.source, UpstreamOrder.county))).all()}
    alarms = dict(((s, c), n) for s, c, n in (await session.execute(
        select(UpstreamAlarm.source, UpstreamElder.county, func.count())
        .outerjoin(UpstreamElder, UpstreamElder.id == UpstreamAlarm.elder)
        .group_by(UpstreamAlarm.source, UpstreamElder.county))).all())
    keys = sorted(set(elders) | set(orders) | set(complaints) | set(alarms),
                  key=lambda key: (key[0], key[1] or ""))
    rows = []
    for key in keys:
        count, emergencies, completed, rated, rating_sum = orders.get(key, (0, 0, 0, 0, 0))
        complained, upheld = complaints.get(key, (0, 0))
        rows.append(RollupRow(key[0], key[1], elders.get(key, 0), count, int(emergencies or 0),
                              int(completed or 0), rated, int(rating_sum or 0), complained,
                              int(upheld or 0), alarms.get(key, 0)))
    return rows


def format_rollup(rows: list[RollupRow]) -> str:
    head = ("source", "county", "elders", "orders", "emergencies", "completed", "rated",
            "mean rating", "complaints", "upheld", "alarms")
    lines = ["\t".join(head)]
    for row in rows:
        mean = f"{row.mean_rating:.2f}" if row.mean_rating is not None else "-"
        lines.append("\t".join(str(v) for v in (
            row.source, row.county or "-", row.elders, row.orders, row.emergencies,
            row.completed, row.rated, mean, row.complaints, row.upheld, row.alarms)))
    total = [sum(getattr(r, name) for r in rows) for name in (
        "elders", "orders", "emergencies", "completed", "rated", "rating_sum", "complaints",
        "upheld", "alarms")]
    mean = f"{total[5] / total[4]:.2f}" if total[4] else "-"
    lines.append("\t".join(str(v) for v in ("province", "-", *total[:5], mean, *total[6:])))
    return "\n".join(lines)
