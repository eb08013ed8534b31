"""Alarm boxes: from AlarmReceiver spool files to emergency orders, alerts and test reports.

:func:`ingest_spool` is the entry point; call it periodically (and once at start). Per
file, in this order, so that a crash at any point loses nothing:

1. parse it; a bad file goes to ``quarantine/`` (with a reason) and raises an alert,
   except a file that ends early and was written less than ``incomplete_grace_s`` ago:
   its writer may only have paused, so it waits for the next scan;
2. record the file and every event in one transaction, each event with its action:
   ``order`` (an emergency for a known elder), ``alert`` (operators must look: an
   emergency nobody could be identified for, or device trouble), ``test`` (the device's
   last test time moves on) or ``record`` (restores, listen-in);
3. move it to ``processed/``. A file already recorded (same name and content: a crash
   between 2 and 3) is only moved.

Then every ``order`` event not yet handled gets its emergency order (one per file and
elder) and every unhandled ``alert`` is returned once in the report, for the engine to
publish. Each announcement (``alarm_emergency``, ``alarm_alert``) is an outbox row committed
in the same transaction that marks its events handled (``dispatch/outbox.py``), so an alert
Redis did not take is published later, never lost. An ingester takes a short lease on the
events before it opens their order, so two engines never open it twice; if it dies between
opening the order and marking the events handled, the next run after the lease opens a
second order: the safe side.

Orders carry ``source="handset"`` (the work-order source CHECK constraint has no alarm
value); the alarm itself is on the order's timeline as an ``alarm`` event whose detail
names the account, codes, kinds and alarm event ids.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch import outbox
from dispatch.alarm_codes import EMERGENCY_KINDS, TEST_KINDS, TROUBLE_KINDS, CodeMap
from dispatch.alarm_spool import (
    FUTURE_TOLERANCE_S,
    QuarantineNoteError,
    SpoolFile,
    SpoolFileError,
    move_to_processed,
    pending_files,
    quarantine,
    read_spool_file,
    shown_name,
)
from dispatch.console_events import AlarmAlertEvent, AlarmEmergency
from dispatch.contact_id import Qualifier
from dispatch.models import (
    AlarmAction,
    AlarmDevice,
    AlarmEvent,
    AlarmFile,
    AlarmKind,
    OrderEvent,
    OrderSource,
    ServiceType,
)
from dispatch.orders import create_order
from dispatch.outbox import Announcement
from dispatch.phones import mask
from dispatch.profile import elder_place
from dispatch.regions import Place
from dispatch.registry import CallerStatus, identify

__all__ = [
    "AlarmAlert",
    "AlarmOrder",
    "IngestReport",
    "SilentDevice",
    "add_device",
    "decide",
    "ingest_spool",
    "silent_devices",
]

log = logging.getLogger(__name__)

ORDER_SOURCE = OrderSource.HANDSET
DEFAULT_MIN_AGE_S = 2.0
DEFAULT_INCOMPLETE_GRACE_S = 30.0
CLAIM_LEASE = timedelta(minutes=2)
_ACCOUNT = re.compile(r"^[0-9B-F]{4}$")

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True, slots=True)
class AlarmAlert:
    """Something operators must see. ``reason``: ``unidentified_alarm`` (an emergency from
    an unknown account on a line that names no elder), ``device_trouble`` (power, battery,
    supervision) or ``quarantined_file`` (a spool file that could not be read; ``detail``
    says why, and that its ``.reason`` note is missing if it could not be written)."""

    reason: str
    account: str | None = None
    kind: AlarmKind | None = None
    code: str | None = None
    elder_id: int | None = None
    device_id: int | None = None
    calling_from: str | None = None
    file_name: str | None = None
    detail: str = ""
    event_id: int | None = None
    announcement: Announcement | None = None  # its committed outbox row, if any

    def event(self, place: Place | None = None) -> AlarmAlertEvent:
        """What the consoles get (``alarm_alert``), in the elder's ``place`` if known."""
        return AlarmAlertEvent(
            reason=self.reason, account=self.account,
            kind=None if self.kind is None else str(self.kind), code=self.code,
            elder_id=self.elder_id, device_id=self.device_id, calling_from=self.calling_from,
            file_name=self.file_name, detail=self.detail, event_id=self.event_id,
            place=place or Place())


@dataclass(frozen=True, slots=True)
class AlarmOrder:
    order_id: int
    order_no: str
    elder_id: int
    kinds: tuple[AlarmKind, ...]
    event_ids: tuple[int, ...]
    announcement: Announcement | None = None  # its committed ``alarm_emergency`` row


@dataclass(slots=True)
class IngestReport:
    ingested: list[str] = field(default_factory=list)  # recorded now, moved to processed/
    duplicates: list[str] = field(default_factory=list)  # recorded before, only moved
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    waiting: list[str] = field(default_factory=list)  # too young: maybe still being written
    failed: list[tuple[str, str]] = field(default_factory=list)  # left in place, retried
    events: int = 0
    orders: list[AlarmOrder] = field(default_factory=list)
    alerts: list[AlarmAlert] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SilentDevice:
    device_id: int
    account: str
    model: str
    elder_id: int
    last_test_at: datetime | None
    due_at: datetime  # when a test report was due at the latest


def decide(kind: AlarmKind, qualifier: Qualifier, elder_known: bool) -> AlarmAction:
    """The action for one event (pure)."""
    if qualifier is Qualifier.RESTORE:
        return AlarmAction.RECORD
    if kind in EMERGENCY_KINDS:
        return AlarmAction.ORDER if elder_known else AlarmAction.ALERT
    if kind in TEST_KINDS:
        return AlarmAction.TEST
    if kind in TROUBLE_KINDS:
        return AlarmAction.ALERT
    return AlarmAction.RECORD


async def add_device(
    session: AsyncSession,
    *,
    account: str,
    model: str,
    elder_id: int,
    line_e164: str | None,
    registered_at: datetime,
    test_interval_hours: int = 24,
) -> AlarmDevice:
    """Register an alarm device (account in HEX notation, e.g. ``1234``) and COMMIT."""
    if not _ACCOUNT.match(account):
        raise ValueError(f"account must be 4 Contact ID digits (0-9, B-F), got {account!r}")
    if not 1 <= test_interval_hours <= 24 * 366:
        raise ValueError("test_interval_hours must be between 1 and 8784")
    if not model or len(model) > 32:
        raise ValueError("model must be 1 to 32 characters")
    device = AlarmDevice(account=account, model=model, elder_id=elder_id, line_e164=line_e164,
                         test_interval_hours=test_interval_hours, registered_at=registered_at)
    try:
        session.add(device)
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return device


async def silent_devices(session: AsyncSession, now: datetime) -> list[SilentDevice]:
    """Devices whose periodic test report is overdue at ``now``, longest silent first.

    A device never heard from is due one interval after its registration.
    """
    rows = await session.execute(select(
        AlarmDevice.id, AlarmDevice.account, AlarmDevice.model, AlarmDevice.elder_id,
        AlarmDevice.last_test_at, AlarmDevice.registered_at, AlarmDevice.test_interval_hours,
    ))
    silent = []
    for device_id, account, model, elder_id, last_test, registered, hours in rows:
        due = (last_test or registered) + timedelta(hours=hours)
        if due < now:
            silent.append(SilentDevice(device_id, account, model, elder_id, last_test, due))
    silent.sort(key=lambda s: (s.due_at, s.device_id))
    return silent


async def _devices(session: AsyncSession, accounts: Iterable[str]) -> dict[str, AlarmDevice]:
    result = await session.execute(
        select(AlarmDevice).where(AlarmDevice.account.in_(sorted(set(accounts))))
    )
    return {device.account: device for device in result.scalars()}


async def _line_elder(session: AsyncSession, calling_from: str | None,
                      local_area_code: str) -> int | None:
    """The elder whose own phone the alarm called from, if any."""
    identity = await identify(session, calling_from, local_area_code)
    return identity.elder_id if identity.status is CallerStatus.ELDER else None


async def _record_file(session: AsyncSession, spool: SpoolFile, now: datetime,
                       code_map: CodeMap, local_area_code: str) -> int | None:
    """Record a parsed file and its events in one transaction; None if already recorded."""
    content = spool.content
    seen = await session.execute(select(AlarmFile.id).where(
        AlarmFile.name == spool.name, AlarmFile.sha256 == spool.sha256))
    if seen.first() is not None:
        await session.rollback()
        return None
    devices = await _devices(session, (m.account for m in content.messages))
    line_elder: int | None = None
    if any(m.account not in devices for m in content.messages):
        line_elder = await _line_elder(session, content.calling_from, local_area_code)
    record = AlarmFile(
        name=spool.name, sha256=spool.sha256,
        calling_from=(content.calling_from or "")[:32] or None,
        caller_name=(content.caller_name or "")[:80] or None,
        timestamp_text=content.timestamp_text[:80],
        received_at=spool.received_at, ingested_at=now,
    )
    try:
        session.add(record)
        await session.flush()
        _add_events(session, record.id, spool, devices, line_elder, now, code_map)
        await session.commit()
    except IntegrityError:  # a concurrent scan recorded the same file first
        await session.rollback()
        return None
    return len(content.messages)


def _add_events(session: AsyncSession, file_id: int, spool: SpoolFile,
                devices: dict[str, AlarmDevice], line_elder: int | None, now: datetime,
                code_map: CodeMap) -> None:
    for seq, message in enumerate(spool.content.messages):
        device = devices.get(message.account)
        elder_id = device.elder_id if device is not None else line_elder
        kind = code_map.kind(device.model if device else None, message.code)
        action = decide(kind, message.qualifier, elder_id is not None)
        if action is AlarmAction.TEST and device is not None and (
            device.last_test_at is None or device.last_test_at < spool.received_at
        ):
            device.last_test_at = spool.received_at
        session.add(AlarmEvent(
            file_id=file_id, seq=seq, device_id=device.id if device else None,
            elder_id=elder_id, account=message.account, message=message.text,
            qualifier=int(message.qualifier), code=message.code, partition=message.partition,
            zone=message.zone, kind=kind, action=action, received_at=spool.received_at,
            handled_at=None if action in (AlarmAction.ORDER, AlarmAction.ALERT) else now,
        ))


async def _claim(session: AsyncSession, ids: list[int], now: datetime) -> bool:
    """Take the lease on unhandled events (all of them or none: they were committed
    together); a lease older than :data:`CLAIM_LEASE` is free again (its holder died)."""
    result = await session.execute(
        update(AlarmEvent)
        .where(AlarmEvent.id.in_(ids), AlarmEvent.handled_at.is_(None),
               or_(AlarmEvent.claimed_at.is_(None), AlarmEvent.claimed_at < now - CLAIM_LEASE))
        .values(claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return bool(result.rowcount)


async def _open_orders(session: AsyncSession, now: datetime, opened: list[AlarmOrder]
                       ) -> None:
    """Open the emergency orders of all unhandled ``order`` events, appending to ``opened``
    as each is committed."""
    result = await session.execute(
        select(AlarmEvent, AlarmFile.name)
        .join(AlarmFile, AlarmEvent.file_id == AlarmFile.id)
        .where(AlarmEvent.action == AlarmAction.ORDER, AlarmEvent.handled_at.is_(None))
        .order_by(AlarmEvent.id)
    )
    groups: dict[tuple[int, int], list[tuple[AlarmEvent, str]]] = {}
    for event, file_name in result.all():
        assert event.elder_id is not None
        groups.setdefault((event.file_id, event.elder_id), []).append((event, file_name))
    await session.commit()  # end the read: create_order writes on its own connection
    for (_, elder_id), members in groups.items():
        events = [event for event, _ in members]
        if not await _claim(session, [event.id for event in events], now):
            continue  # another ingester is opening this order
        order = await create_order(
            session, elder_id=elder_id, service=ServiceType.EMERGENCY, source=ORDER_SOURCE,
            call_uniqueid=None, requested_by=f"alarm {events[0].account}", at=now,
        )
        assert order.id is not None and order.order_no is not None
        ids = [event.id for event in events]
        detail: dict[str, Any] = {
            "account": events[0].account, "file": members[0][1], "event_ids": ids,
            "codes": [e.code for e in events], "kinds": [str(e.kind) for e in events],
            "zones": [e.zone for e in events],
        }
        try:
            await session.execute(update(AlarmEvent).where(AlarmEvent.id.in_(ids))
                                  .values(order_id=order.id, handled_at=now))
            session.add(OrderEvent(order_id=order.id, at=now, kind="alarm", detail=detail))
            announced = await outbox.add(session, AlarmEmergency(
                order_no=order.order_no, elder_id=elder_id,
                kinds=[str(e.kind) for e in events],
                place=await elder_place(session, elder_id)), now)
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        opened.append(AlarmOrder(order.id, order.order_no, elder_id,
                                 tuple(e.kind for e in events), tuple(ids), announced))
        log.warning("alarm %s (%s): emergency order %s for elder %d",
                    events[0].account, ",".join(str(e.kind) for e in events),
                    order.order_no, elder_id)


async def _hand_out_alerts(session: AsyncSession, now: datetime, alerts: list[AlarmAlert]
                           ) -> None:
    """Every unhandled ``alert`` event, once: each is marked handled in the transaction that
    commits its outbox row."""
    result = await session.execute(
        select(AlarmEvent, AlarmFile.name, AlarmFile.calling_from)
        .join(AlarmFile, AlarmEvent.file_id == AlarmFile.id)
        .where(AlarmEvent.action == AlarmAction.ALERT, AlarmEvent.handled_at.is_(None))
        .order_by(AlarmEvent.id)
    )
    rows = result.all()
    await session.commit()
    for event, file_name, calling_from in rows:
        alert = AlarmAlert(
            reason="unidentified_alarm" if event.kind in EMERGENCY_KINDS else "device_trouble",
            account=event.account, kind=event.kind, code=event.code, elder_id=event.elder_id,
            device_id=event.device_id, calling_from=calling_from, file_name=file_name,
            detail=f"{event.kind} from account {event.account}", event_id=event.id,
        )
        try:
            taken = await session.execute(
                update(AlarmEvent)
                .where(AlarmEvent.id == event.id, AlarmEvent.handled_at.is_(None))
                .values(handled_at=now)
                .execution_options(synchronize_session=False)
            )
            if not taken.rowcount:
                await session.rollback()
                continue  # handed out by another ingester
            announced = await outbox.add(
                session, alert.event(await elder_place(session, alert.elder_id)), now)
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        alert = replace(alert, announcement=announced)
        alerts.append(alert)
        log.warning("alarm alert %s: account %s, %s, line %s", alert.reason, alert.account,
                    alert.kind, mask(alert.calling_from))


def _quarantine(path: Path, error: SpoolFileError, report: IngestReport) -> None:
    name = shown_name(path.name)
    detail = error.reason
    try:
        quarantine(path, error.reason)
    except FileNotFoundError:
        return  # a concurrent scan took it
    except QuarantineNoteError as exc:  # moved, but no note: the alert carries the reason
        detail = f"{error.reason} ({exc.strerror})"
        log.error("alarm file %s quarantined without its reason note (%s): %s", name,
                  exc.strerror, error.reason)
    except OSError as exc:
        report.failed.append((name, f"cannot quarantine: {exc.strerror or exc}"))
        log.error("alarm file %s: %s; cannot quarantine: %s", name, error.reason,
                  exc.strerror or exc)
        return
    report.quarantined.append((name, error.reason))
    report.alerts.append(AlarmAlert(
        reason="quarantined_file", calling_from=error.calling_from, file_name=name,
        detail=detail,
    ))
    log.error("alarm file %s quarantined: %s (line %s)", name, error.reason,
              mask(error.calling_from))


def _processed(path: Path, report: IngestReport, target: list[str]) -> None:
    name = shown_name(path.name)
    try:
        move_to_processed(path)
    except FileNotFoundError:
        pass  # a concurrent scan moved it
    except OSError as exc:  # recorded; the next scan finds it recorded and retries the move
        report.failed.append((name, f"cannot move to processed: {exc.strerror or exc}"))
        log.error("alarm file %s: cannot move to processed: %s", name, exc.strerror or exc)
        return
    target.append(name)


def _may_still_grow(error: SpoolFileError, wall: float, grace_s: float) -> bool:
    """An incomplete file written within ``grace_s`` (wall clock): its writer may be
    pausing, so it is read again at the next scan instead of being quarantined."""
    if not error.incomplete or error.modified_at is None:
        return False
    return -FUTURE_TOLERANCE_S <= wall - error.modified_at < grace_s


async def _ingest_file(path: Path, session_factory: SessionFactory, now: datetime,
                       code_map: CodeMap, local_area_code: str, report: IngestReport,
                       wall: float, incomplete_grace_s: float) -> None:
    try:
        spool = read_spool_file(path)
    except SpoolFileError as exc:
        if _may_still_grow(exc, wall, incomplete_grace_s):
            report.waiting.append(shown_name(path.name))
        else:
            _quarantine(path, exc, report)
        return
    except Exception as exc:  # one odd file must not stop the others
        _quarantine(path, SpoolFileError(f"cannot be read: {exc.__class__.__name__}"),
                    report)
        return
    try:
        async with session_factory() as session:
            count = await _record_file(session, spool, now, code_map, local_area_code)
    except SQLAlchemyError as exc:
        report.failed.append((shown_name(path.name),
                              f"storage error: {exc.__class__.__name__}"))
        log.error("alarm file %s: not recorded (%s); left in the spool",
                  shown_name(path.name), exc)
        return
    if count is None:
        _processed(path, report, report.duplicates)
    else:
        report.events += count
        _processed(path, report, report.ingested)


async def _ingest_isolated(path: Path, session_factory: SessionFactory, now: datetime,
                           code_map: CodeMap, local_area_code: str, report: IngestReport,
                           wall: float, incomplete_grace_s: float) -> None:
    """Ingest one file; an error nobody foresaw stays with that file (left in the spool,
    listed in ``report.failed``) so that the other files and their orders go ahead."""
    try:
        await _ingest_file(path, session_factory, now, code_map, local_area_code, report,
                           wall, incomplete_grace_s)
    except Exception as exc:  # isolation is the point
        name = shown_name(path.name)
        report.failed.append((name, f"unexpected error: {exc.__class__.__name__}"))
        log.exception("alarm file %s: unexpected error; left in the spool", name)


async def ingest_spool(
    session_factory: SessionFactory,
    spool_dir: Path,
    now: datetime,
    code_map: CodeMap,
    *,
    local_area_code: str = "931",
    min_age_s: float = DEFAULT_MIN_AGE_S,
    incomplete_grace_s: float = DEFAULT_INCOMPLETE_GRACE_S,
    wall_time: float | None = None,
) -> IngestReport:
    """Ingest every spool file at least ``min_age_s`` old (wall clock, ``wall_time``
    default now), then open pending orders and hand out pending alerts. A file that ends
    early waits until it is ``incomplete_grace_s`` old before it is quarantined.

    ``session_factory()`` opens one session per write step (``async with``); on SQLite it
    must serialise writers with the rest of the process, as ``EngineContext.writing`` does.

    ``now`` (timezone-aware, the engine clock) stamps orders and ingestion. Storage errors
    leave the file in place for the next run and are listed in ``report.failed``; files are
    never deleted. Open orders and alerts are in the report for the engine to publish.
    """
    report = IngestReport()
    wall = time.time() if wall_time is None else wall_time
    try:
        ready, young = pending_files(Path(spool_dir), min_age_s, wall)
    except OSError as exc:  # no spool (yet), or no permission: pending orders still go out
        ready, young = [], []
        report.failed.append(("", f"cannot list the spool {spool_dir}: {exc.strerror or exc}"))
        log.error("alarm spool %s cannot be listed: %s", spool_dir, exc)
    report.waiting = [shown_name(path.name) for path in young]
    for path in ready:
        await _ingest_isolated(path, session_factory, now, code_map, local_area_code, report,
                               wall, incomplete_grace_s)
    try:
        async with session_factory() as session:
            await _open_orders(session, now, report.orders)
            await _hand_out_alerts(session, now, report.alerts)
    except SQLAlchemyError as exc:  # pending events stay pending: the next run retries
        report.failed.append(("", f"storage error while opening orders: {exc.__class__.__name__}"))
        log.error("alarm orders and alerts not handed out: %s", exc)
    return report
