"""The recordings' retention: expired files deleted, held ones kept, and the index checked
against the folder.

A recording older than ``[recordings] retention_days`` is deleted (its file removed, its row
marked ``deleted_at``) unless it is held: a recording of an emergency order or of an order
with an upheld complaint is kept until a supervisor releases it (``released_at``). The order
of a recording is its own ``order_id``, the order its call created, or the order its call
record points to. Every pass also reports the rows whose file is gone and the files no row
knows (both after a grace period, so a recording being written is never reported).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import (
    Call,
    Complaint,
    Recording,
    RecordingKind,
    ServiceType,
    WorkOrder,
)
from dispatch.recordings import call_answered, file_in

log = logging.getLogger(__name__)

BATCH = 1000
GRACE = timedelta(hours=1)
FOLDERS = ("calls", "messages")  # what Asterisk writes into the recordings folder


@dataclass
class RetentionReport:
    deleted: list[str] = field(default_factory=list)  # files, relative to the folder
    held: int = 0  # expired but kept (an emergency's, an upheld complaint's)
    missing_files: list[str] = field(default_factory=list)  # rows whose file is gone
    orphan_files: list[str] = field(default_factory=list)  # files no row knows
    # calls no operator answered: MixMonitor (option b) never wrote their file
    never_recorded: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"deleted {len(self.deleted)} expired recording(s); kept {self.held} held "
               "(emergency orders, upheld complaints)"]
        out += [f"deleted {name}" for name in self.deleted]
        out += [f"missing file of an indexed recording: {name}" for name in self.missing_files]
        out += [f"file without a recording in the index: {name}" for name in self.orphan_files]
        return out


def held_ids(candidates: list[int]) -> object:
    """The statement selecting which of ``candidates`` (recording ids) are held."""
    call_order = select(Call.order_id).where(Call.uniqueid == Recording.uniqueid)
    order_of = or_(WorkOrder.id == Recording.order_id,
                   WorkOrder.call_uniqueid == Recording.uniqueid,
                   WorkOrder.id.in_(call_order.scalar_subquery()))
    upheld = select(Complaint.id).where(Complaint.order_id == WorkOrder.id,
                                        Complaint.upheld.is_(True)).exists()
    return (select(Recording.id).join(WorkOrder, order_of)
            .where(Recording.id.in_(candidates), Recording.released_at.is_(None),
                   or_(WorkOrder.service == ServiceType.EMERGENCY, upheld)))


async def prune(session: AsyncSession, root: Path, now: datetime, retention_days: int
                ) -> RetentionReport:
    """One pass: delete what expired and is not held, then check index and folder."""
    report = await prune_expired(session, root, now, retention_days)
    await check_index(session, root, now, report)
    await forget_unrecorded(session, report.never_recorded, now)
    return report


async def prune_expired(session: AsyncSession, root: Path, now: datetime, retention_days: int,
                        report: RetentionReport | None = None) -> RetentionReport:
    """Delete every expired recording that is not held. COMMITs after each batch, so a pass
    cut short keeps what it did; the files are removed off the event loop."""
    report = report or RetentionReport()
    cutoff = now - timedelta(days=retention_days)
    last_id = 0
    while True:
        rows = (await session.execute(
            select(Recording.id, Recording.file)
            .where(Recording.deleted_at.is_(None), Recording.started_at < cutoff,
                   Recording.id > last_id)
            .order_by(Recording.id).limit(BATCH))).all()
        if not rows:
            return report
        last_id = rows[-1].id
        held = set((await session.scalars(held_ids([row.id for row in rows]))).all())
        report.held += len(held)
        expired = [row for row in rows if row.id not in held]
        if not expired:
            continue
        await asyncio.to_thread(_remove_all, root, [row.file for row in expired])
        await session.execute(
            update(Recording).where(Recording.id.in_([row.id for row in expired]),
                                    Recording.deleted_at.is_(None))
            .values(deleted_at=now))
        await session.commit()
        report.deleted += [row.file for row in expired]
        for row in expired:
            log.info("recording %s deleted (older than %d days)", row.file, retention_days)


def _remove_all(root: Path, names: list[str]) -> None:
    for name in names:
        _remove(root, name)


def _remove(root: Path, relative: str) -> None:
    path = file_in(root, relative)
    if path is None:
        log.error("recording %r lies outside the recordings folder: not deleted", relative)
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.error("recording %s not deleted: %s", relative, exc)


async def check_index(session: AsyncSession, root: Path, now: datetime,
                      report: RetentionReport) -> RetentionReport:
    """Rows whose file is gone and files no row knows, each older than ``GRACE`` (the folder
    is read off the event loop); a missing file of a call no operator answered is
    ``never_recorded`` (:func:`forget_unrecorded` removes those rows). Reads only."""
    known = set((await session.scalars(select(Recording.file))).all())
    live = list((await session.scalars(
        select(Recording.file).where(Recording.deleted_at.is_(None),
                                     Recording.started_at < now - GRACE))).all())
    missing, orphans = await asyncio.to_thread(_compare, Path(root), known, live,
                                               (now - GRACE).timestamp())
    unanswered = set((await session.scalars(
        select(Recording.file).where(Recording.file.in_(missing),
                                     Recording.kind == RecordingKind.CALL,
                                     ~call_answered()))).all()) if missing else set()
    report.never_recorded = [name for name in missing if name in unanswered]
    report.missing_files = [name for name in missing if name not in unanswered]
    report.orphan_files = orphans
    if report.missing_files:
        log.warning("%d indexed recording(s) without their file, e.g. %s",
                    len(report.missing_files), ", ".join(report.missing_files[:3]))
    if orphans:
        log.warning("%d file(s) in the recordings folder belong to no recording, e.g. %s",
                    len(orphans), ", ".join(orphans[:3]))
    return report


async def forget_unrecorded(session: AsyncSession, names: list[str], now: datetime) -> None:
    """Mark the rows of calls nothing was recorded for as deleted. COMMITs."""
    if names:
        await session.execute(update(Recording).where(Recording.file.in_(names),
                                                      Recording.deleted_at.is_(None))
                              .values(deleted_at=now))
        await session.commit()


def _compare(root: Path, known: set[str], live: list[str], newest: float
             ) -> tuple[list[str], list[str]]:
    missing = sorted(name for name in live
                     if (path := file_in(root, name)) is None or not path.exists())
    orphans = []
    for folder in FOLDERS:
        for dirpath, _dirs, files in os.walk(root / folder):
            for name in files:
                path = Path(dirpath) / name
                relative = path.relative_to(root).as_posix()
                if relative not in known and _older(path, newest):
                    orphans.append(relative)
    return missing, sorted(orphans)


def _older(path: Path, than: float) -> bool:
    try:
        return path.stat().st_mtime < than
    except OSError:
        return False


async def release(session: AsyncSession, token: str, now: datetime) -> bool:
    """Release a held recording: the retention may delete it once it is old enough. COMMITs."""
    done = await session.execute(
        update(Recording).where(and_(Recording.token == token, Recording.released_at.is_(None),
                                     Recording.deleted_at.is_(None)))
        .values(released_at=now))
    await session.commit()
    return bool(done.rowcount)
