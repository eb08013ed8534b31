"""Replay of the emergency spool: calls the engine did not take, or nobody answered.

``agi_scripts/emergency_spool.py`` writes one JSON record per call (version 1: ``uniqueid``,
``linkedid``, ``channel``, ``caller_number``, ``caller_name``, ``reason``, ``queuestatus``,
``spooled_at``; ``member``, the operator who answered, may be absent). Each record becomes an
EMERGENCY work order for the identified elder, whose
``call_uniqueid`` is the call's uniqueid; a record moves to ``replayed/`` only after its order
and its ``spooled_emergency`` outbox row (``dispatch/outbox.py``) are committed, and an
order already carrying that uniqueid is never made twice, so a crash at any point and a
second run are both harmless. Callers the registry does not know come back as alerts: the
record stays in place until :func:`settle_alert` confirms the alert is in the outbox.
Malformed records go to ``quarantine/`` with a ``.reason`` file beside them. The engine's own
emergency callbacks (reason ``emergency_callback``) belong to an order that stays open: they
move to ``replayed/`` and open no second order. A call an operator answered (``member``) that
did not come from a one-key handset opens nothing: the operator took it. One replay runs at a
time per spool directory (an advisory lock); nothing here raises.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch import outbox
from dispatch.calls import CallDisposition, link_call_to_order, record_call
from dispatch.console_events import SpooledEmergency
from dispatch.models import OrderSource, ServiceType, WorkOrder
from dispatch.open_alarms import CALLBACK_REASON
from dispatch.orders import add_order_event, create_order, emergency_key
from dispatch.outbox import Announcement
from dispatch.phones import mask
from dispatch.profile import elder_place
from dispatch.registry import CallerIdentity, identify

log = logging.getLogger(__name__)

REPLAYED = "replayed"
QUARANTINE = "quarantine"
LOCK_FILE = ".replay.lock"
RECORD_VERSION = 1
MAX_RECORD_BYTES = 16 * 1024
MAX_UNIQUEID = 64
MAX_TEXT = 256
TEXT_FIELDS = ("linkedid", "channel", "caller_number", "caller_name", "reason", "queuestatus",
               "member")
REQUESTED_BY = "spool"

class MalformedRecord(ValueError):
    """A spool file that is not a valid version-1 record."""


@dataclass(frozen=True, slots=True)
class SpoolRecord:
    uniqueid: str
    linkedid: str
    channel: str
    caller_number: str
    caller_name: str
    reason: str
    queuestatus: str
    member: str  # the queue member who answered the call; empty if nobody did
    spooled_at: datetime


@dataclass(frozen=True, slots=True)
class SpooledOrder:
    """An emergency order made from a record (or found already made, ``created`` False)."""

    uniqueid: str
    order_no: str
    elder_id: int | None
    created: bool
    announcement: Announcement | None = None  # its committed ``spooled_emergency`` row


@dataclass(frozen=True, slots=True)
class SpoolAlert:
    """A spooled call from a caller the registry does not know: a human must call back."""

    path: Path
    record: SpoolRecord
    caller_status: str  # "unknown" or "withheld"


@dataclass(frozen=True, slots=True)
class UnfinishedCall:
    """A call a dead engine left in flight: it may have gone to the queue before its screen
    pop was published (``ivr/spool_service.py`` publishes one)."""

    record: SpoolRecord
    identity: CallerIdentity
    order_no: str


@dataclass
class ReplayReport:
    orders: list[SpooledOrder] = field(default_factory=list)
    alerts: list[SpoolAlert] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)  # left for the next run
    callbacks: list[str] = field(default_factory=list)  # uniqueids of the engine's callbacks
    answered: list[str] = field(default_factory=list)  # ordinary calls an operator took
    busy: bool = False  # another replay holds the spool
    unfinished: list[UnfinishedCall] = field(default_factory=list)  # of the in-flight ones

    @property
    def created(self) -> list[SpooledOrder]:
        return [order for order in self.orders if order.created]


def parse_record(data: bytes) -> SpoolRecord:
    """Validate one spool file's bytes; raises MalformedRecord with the reason."""
    if len(data) > MAX_RECORD_BYTES:
        raise MalformedRecord(f"larger than {MAX_RECORD_BYTES} bytes")
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedRecord(f"not UTF-8 JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MalformedRecord("not a JSON object")
    if raw.get("version") != RECORD_VERSION:
        raise MalformedRecord(f"unsupported version {raw.get('version')!r}")
    uniqueid = raw.get("uniqueid")
    if not isinstance(uniqueid, str) or not uniqueid.strip() or len(uniqueid) > MAX_UNIQUEID:
        raise MalformedRecord("uniqueid missing, empty or too long")
    texts: dict[str, str] = {}
    for name in TEXT_FIELDS:
        value = raw.get(name, "")
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise MalformedRecord(f"{name} is not a string of at most {MAX_TEXT} characters")
        texts[name] = value
    return SpoolRecord(uniqueid=uniqueid.strip(), spooled_at=_timestamp(raw.get("spooled_at")),
                       **texts)


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise MalformedRecord("spooled_at missing")
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedRecord(f"spooled_at is not ISO 8601: {value[:40]!r}") from None
    if stamp.tzinfo is None:
        raise MalformedRecord("spooled_at has no time zone")
    return stamp


def pending_records(spool_dir: Path) -> list[Path]:
    """The spool's record files, oldest name first (temporary dot-files are skipped)."""
    try:
        entries = list(os.scandir(spool_dir))
    except FileNotFoundError:
        return []
    return sorted(
        Path(entry.path) for entry in entries
        if entry.name.endswith(".json") and not entry.name.startswith(".")
        and entry.is_file(follow_symlinks=False)
    )


def _move(path: Path, folder_name: str) -> Path:
    """Rename ``path`` into a subfolder of its directory, never over an existing file."""
    folder = path.parent / folder_name
    folder.mkdir(mode=0o750, exist_ok=True)
    target = folder / path.name
    counter = 1
    while target.exists():
        target = folder / f"{path.stem}.{counter}{path.suffix}"
        counter += 1
    os.replace(path, target)
    return target


def _quarantine(path: Path, reason: str) -> None:
    target = _move(path, QUARANTINE)
    note = target.with_name(target.name + ".reason")  # may quote a caller: not world-readable
    fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0),
                 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(reason.replace("\r", " ").rstrip("\n") + "\n")


def settle_alert(alert: SpoolAlert) -> bool:
    """Call once the alert has been published: its record moves to ``replayed/``."""
    try:
        _move(alert.path, REPLAYED)
    except OSError as exc:
        log.warning("spool: could not settle %s: %s", alert.path.name, exc)
        return False
    return True


@contextlib.contextmanager
def _replay_lock(spool_dir: Path) -> Iterator[bool]:
    """Held (True) by at most one replay per spool directory at a time."""
    fd = os.open(spool_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


async def _existing_order(session: AsyncSession, uniqueid: str) -> tuple[str, int] | None:
    """(order number, id) of the order already made for the call, if any."""
    try:
        result = await session.execute(
            select(WorkOrder.order_no, WorkOrder.id).where(WorkOrder.call_uniqueid == uniqueid)
            .limit(1))
        row = result.first()
        return None if row is None else (str(row[0]), int(row[1]))
    finally:
        await session.rollback()  # end the read before the write transaction


async def _call_recorded(session: AsyncSession, record: SpoolRecord, identity: CallerIdentity,
                         order_id: int) -> None:
    """The call's record, pointing to its order: written when the engine that took the call
    died before writing it (its in-flight record came here), linked when it names no order;
    a record already pointing to the order is left as it is."""
    await record_call(
        session, uniqueid=record.uniqueid, linkedid=record.linkedid or None,
        channel=record.channel, direction="inbound", caller_number=identity.number,
        identity_status=identity.status.value, elder_id=identity.elder_id,
        started_at=record.spooled_at, ended_at=record.spooled_at,
        disposition=CallDisposition.OPERATOR, reason=record.reason or None, order_id=order_id)
    await link_call_to_order(session, record.uniqueid, order_id)


async def _replay_one(sessions: async_sessionmaker[AsyncSession], path: Path,
                      record: SpoolRecord, local_area_code: str, now: datetime,
                      report: ReplayReport, in_flight: bool) -> None:
    if record.reason == CALLBACK_REASON:  # the engine called the elder back for an open order
        _move(path, REPLAYED)  # that order stays open and the engine keeps trying: no new one
        report.callbacks.append(record.uniqueid)
        return
    async with sessions() as session:
        existing = await _existing_order(session, record.uniqueid)
        identity = await identify(session, record.caller_number, local_area_code)
        if existing is not None:
            if identity.elder_id is not None:
                await _call_recorded(session, record, identity, existing[1])
                if in_flight:
                    report.unfinished.append(UnfinishedCall(record, identity, existing[0]))
            _move(path, REPLAYED)
            report.orders.append(SpooledOrder(record.uniqueid, existing[0], None, False))
            return
        if record.member and not identity.handset:  # an operator took it: nothing is owed
            _move(path, REPLAYED)
            report.answered.append(record.uniqueid)
            return
        if identity.elder_id is None:
            report.alerts.append(SpoolAlert(path, record, identity.status.value))
            return
        source = OrderSource.HANDSET if identity.handset else OrderSource.PHONE
        order = await create_order(
            session, elder_id=identity.elder_id, service=ServiceType.EMERGENCY,
            source=source.value, call_uniqueid=record.uniqueid, requested_by=REQUESTED_BY,
            at=now, business_key=emergency_key(record.uniqueid),
        )
        assert order.order_no is not None
        announced = await _announce(session, order.order_no, identity.elder_id, record, now)
        report.orders.append(SpooledOrder(record.uniqueid, order.order_no,
                                          identity.elder_id, True, announced))
        log.warning("spool: emergency order %s for the %s call of %s (%s)", order.order_no,
                    "answered handset" if record.member else "unanswered",
                    mask(identity.number), record.reason or "-")
        with contextlib.suppress(Exception):  # the order stands; the event is a detail
            await add_order_event(session, order.id, "spooled_call", now, {
                "spooled_at": record.spooled_at.isoformat(), "reason": record.reason,
                "queuestatus": record.queuestatus, "linkedid": record.linkedid,
                "member": record.member,
            })
        await _call_recorded(session, record, identity, order.id)
        if in_flight:
            report.unfinished.append(UnfinishedCall(record, identity, order.order_no))
    _move(path, REPLAYED)


async def _announce(session: AsyncSession, order_no: str, elder_id: int, record: SpoolRecord,
                    now: datetime) -> Announcement:
    """Commit the order's ``spooled_emergency`` outbox row (before the record may move)."""
    try:
        announced = await outbox.add(session, SpooledEmergency(
            order_no=order_no, elder_id=elder_id, uniqueid=record.uniqueid,
            place=await elder_place(session, elder_id)), now)
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return announced


async def replay_spool(sessions: async_sessionmaker[AsyncSession], spool_dir: Path | str,
                       local_area_code: str, now: datetime,
                       in_flight: Collection[str] = ()) -> ReplayReport:
    """Turn every spooled call into an emergency order (or an alert); see the module doc.
    ``in_flight``: the names of the records just adopted from dead engines' in-flight
    folders (their calls are reported ``unfinished``)."""
    report = ReplayReport()
    folder = Path(spool_dir)
    if not folder.is_dir():
        return report
    try:
        with _replay_lock(folder) as held:
            if not held:
                report.busy = True
                return report
            for path in pending_records(folder):
                await _replay_path(sessions, path, local_area_code, now, report,
                                   path.name in in_flight)
    except OSError as exc:  # the lock file or the directory listing
        report.failed.append((LOCK_FILE, f"spool not readable: {exc.strerror or exc}"))
    return report


async def _replay_path(sessions: async_sessionmaker[AsyncSession], path: Path,
                       local_area_code: str, now: datetime, report: ReplayReport,
                       in_flight: bool) -> None:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_RECORD_BYTES + 1)
        record = parse_record(data)
    except MalformedRecord as exc:
        try:
            _quarantine(path, str(exc))
            report.quarantined.append((path.name, str(exc)))
        except OSError as move_error:
            report.failed.append((path.name, f"quarantine failed: {move_error}"))
        return
    except OSError as exc:
        report.failed.append((path.name, f"unreadable: {exc}"))
        return
    try:
        await _replay_one(sessions, path, record, local_area_code, now, report, in_flight)
    except Exception as exc:  # database down, disk full...: the record waits for next time
        # The type only: driver messages may quote the caller's number.
        log.warning("spool: %s not replayed: %s", path.name, type(exc).__name__)
        report.failed.append((path.name, type(exc).__name__))
