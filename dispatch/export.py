"""The export to the province: incremental batches of JSON Lines (format ``hotline-export/1``,
each record type described by a JSON Schema in ``docs/export/``).

A batch covers what changed after the previous batch's watermark (``since``, exclusive) up to
its own (``until``, inclusive): elders and vendors registered, orders created or with a new
timeline event (each exported whole, as it stands), alarm-box events received, complaints
opened or closed. Each record is in a batch once; the same ``since`` and ``until`` give the same
files, byte for byte (records ordered by id, keys sorted, no wall clock in them). A batch is a
folder ``<source>-<until>`` with one file per record type and ``manifest.json`` (counts,
sizes, SHA-256 of each file), written under a temporary name and renamed into place, so a
half-written batch is never seen. Nothing changed: no batch.

Elders are pseudonymised: their id is an HMAC-SHA256 of the platform's own id under
``[export] pseudonym_key`` (stable across batches, so the province can follow an elder; no
default key), without name or phone numbers unless ``personal_data`` is set. Reads are
streamed (``yield_per``), so memory stays flat in the number of records.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import (
    AlarmEvent,
    Complaint,
    Elder,
    ElderPhone,
    OrderEvent,
    Vendor,
    WorkOrder,
    vendor_coverage,
    vendor_services,
)

FORMAT = "hotline-export/1"
RECORD_FILES = ("elders.jsonl", "vendors.jsonl", "orders.jsonl", "alarms.jsonl",
                "complaints.jsonl")
MANIFEST = "manifest.json"
CHUNK = 1000
TIMELINE_KEYS = ("outcome", "reason")  # the only details of an event that leave the platform


class ExportError(ValueError):
    """The export cannot run as asked (no key, a malformed watermark...)."""


@dataclass(frozen=True, slots=True)
class ExportIdentity:
    """Who exports (the platform's region code) and how its records are named: pseudonyms
    under its key, ids prefixed with its code."""

    source: str  # the platform's county (or city) code
    pseudonym_key: bytes
    personal_data: bool = False

    def __post_init__(self) -> None:
        if not (len(self.source) == 6 and self.source.isdigit()):
            raise ExportError(f"the export source must be a six-digit region code, "
                              f"not {self.source[:20]!r}")
        if len(self.pseudonym_key) < 16:
            raise ExportError("[export] pseudonym_key must be set (at least 16 characters): "
                              "there is no default key")

    def elder_id(self, elder_id: int) -> str:
        return hmac.new(self.pseudonym_key, f"{self.source}:elder:{elder_id}".encode(),
                        hashlib.sha256).hexdigest()[:32]

    def order_id(self, order_no: str) -> str:
        return f"{self.source}:{order_no}"

    def vendor_id(self, vendor_id: int | None) -> str | None:
        return None if vendor_id is None else f"{self.source}:v{vendor_id}"


@dataclass
class Batch:
    """A batch written: its folder, watermarks and per-file record counts."""

    folder: Path
    since: datetime | None
    until: datetime
    records: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.records.values())


def parse_watermark(text: str | None) -> datetime | None:
    """A watermark as printed by a previous export (ISO 8601 with its offset)."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ExportError(f"not a watermark: {text[:40]!r} (use the `until` a previous "
                          "export printed)") from None
    if stamp.tzinfo is None:
        raise ExportError("a watermark carries its UTC offset")
    return stamp


def _in_window(column: Any, since: datetime | None, until: datetime) -> Any:
    return column <= until if since is None else (column > since) & (column <= until)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8") + b"\n"


async def export_batch(session: AsyncSession, out: Path, settings: ExportIdentity,
                       since: datetime | None, until: datetime) -> Batch | None:
    """Write the batch (since, until] into ``out``; None (nothing written) if nothing changed."""
    if since is not None and since >= until:
        raise ExportError("since must be before until")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{settings.source}-{until.strftime('%Y%m%dT%H%M%S%fZ')}"
    temp = out / f".{name}.partial"
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    batch = Batch(out / name, since, until)
    writers = {
        "elders.jsonl": _elders(session, settings, since, until),
        "vendors.jsonl": _vendors(session, settings, since, until),
        "orders.jsonl": _orders(session, settings, since, until),
        "alarms.jsonl": _alarms(session, settings, since, until),
        "complaints.jsonl": _complaints(session, settings, since, until),
    }
    files: dict[str, dict[str, Any]] = {}
    try:
        for file_name, records in writers.items():
            files[file_name] = await _write(temp / file_name, records)
            batch.records[file_name] = files[file_name]["records"]
        if batch.total == 0:
            shutil.rmtree(temp)
            return None
        manifest = {"format": FORMAT, "source": settings.source, "since": _iso(since),
                    "until": _iso(until), "personal_data": settings.personal_data,
                    "files": files}
        (temp / MANIFEST).write_bytes(json.dumps(manifest, indent=2, sort_keys=True)
                                      .encode("utf-8") + b"\n")
        for path in temp.iterdir():
            _fsync(path)
        shutil.rmtree(batch.folder, ignore_errors=True)  # the same batch again: replaced
        os.replace(temp, batch.folder)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return batch


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


async def _write(path: Path, records: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    digest = hashlib.sha256()
    count = size = 0
    with path.open("wb") as handle:
        async for record in records:
            data = _line(record)
            handle.write(data)
            digest.update(data)
            count += 1
            size += len(data)
    return {"records": count, "bytes": size, "sha256": digest.hexdigest()}


async def _stream(session: AsyncSession, statement: Any) -> AsyncIterator[Any]:
    result = await session.stream(statement.execution_options(yield_per=CHUNK))
    async for row in result:
        yield row


async def _elders(session: AsyncSession, settings: ExportIdentity, since: datetime | None,
                  until: datetime) -> AsyncIterator[dict[str, Any]]:
    statement = (select(Elder.id, Elder.province_code, Elder.city_code, Elder.county_code,
                        Elder.subsidy_category, Elder.gender, Elder.birth_date,
                        Elder.created_at, Elder.name)
                 .where(_in_window(Elder.created_at, since, until)).order_by(Elder.id))
    async for chunk in _chunks(_stream(session, statement)):
        phones = await _phones(session, [row.id for row in chunk]) \
            if settings.personal_data else {}
        for row in chunk:
            record: dict[str, Any] = {
                "id": settings.elder_id(row.id), "source": settings.source,
                "region": {"province": row.province_code, "city": row.city_code,
                           "county": row.county_code},
                "category": row.subsidy_category.value, "gender": row.gender,
                "birth_year": row.birth_date.year if row.birth_date else None,
                "registered_at": _iso(row.created_at)}
            if settings.personal_data:
                record["name"], record["phones"] = row.name, phones.get(row.id, [])
            yield record


async def _phones(session: AsyncSession, elder_ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for elder_id, number in (await session.execute(
            select(ElderPhone.elder_id, ElderPhone.number_e164)
            .where(ElderPhone.elder_id.in_(elder_ids)).order_by(ElderPhone.id))).all():
        found.setdefault(elder_id, []).append(number)
    return found


async def _chunks(rows: AsyncIterator[Any]) -> AsyncIterator[list[Any]]:
    chunk: list[Any] = []
    async for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _vendors(session: AsyncSession, settings: ExportIdentity, since: datetime | None,
                   until: datetime) -> AsyncIterator[dict[str, Any]]:
    statement = (select(Vendor.id, Vendor.name, Vendor.status, Vendor.rank_score,
                        Vendor.created_at)
                 .where(_in_window(Vendor.created_at, since, until)).order_by(Vendor.id))
    async for chunk in _chunks(_stream(session, statement)):
        ids = [row.id for row in chunk]
        counties = await _grouped(session, vendor_coverage.c.vendor_id,
                                  vendor_coverage.c.county_code, ids)
        services = await _grouped(session, vendor_services.c.vendor_id,
                                  vendor_services.c.service, ids)
        for row in chunk:
            yield {"id": settings.vendor_id(row.id), "source": settings.source,
                   "name": row.name, "status": row.status.value,
                   "counties": sorted(counties.get(row.id, [])),
                   "services": sorted(str(getattr(s, "value", s))
                                      for s in services.get(row.id, [])),
                   "rank_score": row.rank_score, "registered_at": _iso(row.created_at)}


async def _grouped(session: AsyncSession, key: Any, value: Any, ids: list[int]
                   ) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    for owner, item in (await session.execute(select(key, value).where(key.in_(ids)))).all():
        found.setdefault(owner, []).append(item)
    return found


async def _orders(session: AsyncSession, settings: ExportIdentity, since: datetime | None,
                  until: datetime) -> AsyncIterator[dict[str, Any]]:
    changed = _in_window(WorkOrder.created_at, since, until)
    if since is not None:  # the first batch has every order already
        changed = or_(changed, WorkOrder.id.in_(
            select(OrderEvent.order_id).where(_in_window(OrderEvent.at, since, until))))
    statement = (select(WorkOrder.id, WorkOrder.order_no, WorkOrder.elder_id,
                        WorkOrder.service, WorkOrder.status, WorkOrder.source,
                        WorkOrder.priority, WorkOrder.vendor_id, WorkOrder.created_at,
                        WorkOrder.accepted_at, WorkOrder.arrived_at, WorkOrder.completed_at,
                        WorkOrder.rating, Elder.county_code)
                 .join(Elder, Elder.id == WorkOrder.elder_id)
                 .where(WorkOrder.order_no.is_not(None), WorkOrder.created_at <= until,
                        changed)
                 .order_by(WorkOrder.id))
    async for chunk in _chunks(_stream(session, statement)):
        timelines = await _timelines(session, [row.id for row in chunk], until)
        for row in chunk:
            yield {"id": settings.order_id(row.order_no), "source": settings.source,
                   "order_no": row.order_no, "elder": settings.elder_id(row.elder_id),
                   "county": row.county_code, "service": row.service.value,
                   "status": row.status.value, "source_channel": row.source.value,
                   "priority": row.priority, "vendor": settings.vendor_id(row.vendor_id),
                   "created_at": _iso(row.created_at), "accepted_at": _iso(row.accepted_at),
                   "arrived_at": _iso(row.arrived_at), "completed_at": _iso(row.completed_at),
                   "rating": row.rating, "timeline": timelines.get(row.id, [])}


async def _timelines(session: AsyncSession, order_ids: list[int], until: datetime
                     ) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for order_id, at, kind, detail in (await session.execute(
            select(OrderEvent.order_id, OrderEvent.at, OrderEvent.kind, OrderEvent.detail)
            .where(OrderEvent.order_id.in_(order_ids), OrderEvent.at <= until)
            .order_by(OrderEvent.order_id, OrderEvent.at, OrderEvent.id))).all():
        entry = {"at": _iso(at), "kind": kind}
        entry.update(_safe_detail(detail))
        found.setdefault(order_id, []).append(entry)
    return found


def _safe_detail(detail: Any) -> dict[str, str]:
    if not isinstance(detail, dict):
        return {}
    return {key: str(detail[key]) for key in TIMELINE_KEYS
            if isinstance(detail.get(key), str | int)}


async def _alarms(session: AsyncSession, settings: ExportIdentity, since: datetime | None,
                  until: datetime) -> AsyncIterator[dict[str, Any]]:
    statement = (select(AlarmEvent.id, AlarmEvent.elder_id, AlarmEvent.kind, AlarmEvent.action,
                        AlarmEvent.code, AlarmEvent.received_at, AlarmEvent.handled_at,
                        WorkOrder.order_no)
                 .outerjoin(WorkOrder, WorkOrder.id == AlarmEvent.order_id)
                 .where(_in_window(AlarmEvent.received_at, since, until))
                 .order_by(AlarmEvent.id))
    async for row in _stream(session, statement):
        yield {"id": f"{settings.source}:a{row.id}", "source": settings.source,
               "elder": settings.elder_id(row.elder_id) if row.elder_id else None,
               "kind": row.kind.value, "action": row.action.value, "code": row.code,
               "received_at": _iso(row.received_at), "handled_at": _iso(row.handled_at),
               "order": settings.order_id(row.order_no) if row.order_no else None}


async def _complaints(session: AsyncSession, settings: ExportIdentity, since: datetime | None,
                      until: datetime) -> AsyncIterator[dict[str, Any]]:
    statement = (select(Complaint.id, Complaint.vendor_id, Complaint.rating,
                        Complaint.opened_at, Complaint.closed_at, Complaint.upheld,
                        WorkOrder.order_no)
                 .join(WorkOrder, WorkOrder.id == Complaint.order_id)
                 .where(Complaint.opened_at <= until,
                        or_(_in_window(Complaint.opened_at, since, until),
                            _in_window(Complaint.closed_at, since, until)))
                 .order_by(Complaint.id))
    async for row in _stream(session, statement):
        yield {"id": f"{settings.source}:c{row.id}", "source": settings.source,
               "order": settings.order_id(row.order_no),
               "vendor": settings.vendor_id(row.vendor_id), "rating": row.rating,
               "opened_at": _iso(row.opened_at),
               "closed_at": _iso(row.closed_at) if row.closed_at and row.closed_at <= until
               else None,
               "upheld": row.upheld if row.closed_at and row.closed_at <= until else None}
