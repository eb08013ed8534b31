"""An emergency's order, stored beside the call instead of in its way.

An elder in an emergency goes to the operator queue as soon as the engine knows who is
calling; the order is written meanwhile. The write is tried again until it is stored (a
burst of a thousand handsets, or a database that is restarting, only delays it), and once
stored the order is announced on the consoles and the family escalation starts. What is not
stored when the engine stops, or after ``GIVE_UP_S``, is written to the emergency spool in the
dialplan's own record format (``agi_scripts/emergency_spool.py``), which the spool replay
turns into the order (``dispatch/spool_replay.py``); the order's business key and its call
uniqueid make every path store it once. Until the order and then the call's record pointing
to it are stored, the record also waits in this process's in-flight folder
(``ivr/inflight_orders.py``), so an engine killed in between leaves it for another engine's
replay, which stores what is missing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agi_scripts.emergency_spool import record_name, spool_record, write_atomically
from dispatch.calls import record_call
from dispatch.console_events import OrderCreated
from dispatch.models import WorkOrder
from dispatch.orders import ServiceType, StoredOrder, create_announced_order, emergency_key
from dispatch.outbox import Announcement
from dispatch.regions import Place
from ivr.inflight_orders import InflightOrders
from ivr.storage_steps import stored_with_retries

if TYPE_CHECKING:
    from ivr.context import EngineContext

log = logging.getLogger(__name__)

GIVE_UP_S = 60.0  # real seconds of refused writes before the spool takes the order


@dataclass(frozen=True, slots=True)
class EmergencyCall:
    """The call an emergency order is stored for."""

    uniqueid: str
    linkedid: str | None
    channel: str
    caller: str | None  # the caller's number (E.164), None if withheld
    caller_name: str | None
    reason: str  # the queue reason (handset_emergency, caller_emergency)
    elder_id: int
    requested_by: str
    source: str  # the order source: handset, phone
    place: Place


async def store_emergency_order(session: AsyncSession, call: EmergencyCall, at: datetime
                                ) -> tuple[StoredOrder, Announcement | None]:
    """The call's emergency order, created once, with the outbox row that announces it: a
    retry after a commit whose answer was lost finds the order stored by the first try (and
    no announcement: its row, committed with it, goes out by the relay). COMMITs."""
    try:
        return await create_announced_order(
            session, elder_id=call.elder_id, service=ServiceType.EMERGENCY, source=call.source,
            call_uniqueid=call.uniqueid, requested_by=call.requested_by, at=at,
            business_key=emergency_key(call.uniqueid),
            event_of=lambda order_no: OrderCreated(
                order_no=order_no, service=ServiceType.EMERGENCY.value,
                elder_id=call.elder_id, source=call.source, uniqueid=call.uniqueid,
                place=call.place))
    except IntegrityError:
        await session.rollback()
        stored = await session.scalar(
            select(WorkOrder).where(WorkOrder.business_key == emergency_key(call.uniqueid)))
        if stored is None:
            raise
        return StoredOrder(stored.id, stored.order_no), None


async def stored_or_spooled(task: asyncio.Task[StoredOrder | None]) -> StoredOrder | None:
    """The order ``task`` stored, or None if it went to the spool (a stop cancelled it)."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():
            return None
        raise


class EmergencyOrders:
    """Stores emergency orders in the background, each until it is stored or spooled."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.inflight = InflightOrders(ctx.settings.spool.dir)
        # each task's call and its in-flight record (None if the disk refused it)
        self._pending: dict[asyncio.Task[StoredOrder | None],
                            tuple[EmergencyCall, Path | None]] = {}
        # calls whose order is stored and whose call record is not yet: their in-flight record
        self._stored: dict[str, Path | None] = {}

    def store(self, call: EmergencyCall) -> asyncio.Task[StoredOrder | None]:
        """Start storing ``call``'s order, its in-flight record written first (before the
        caller is routed); the task gives the order, or None if spooled."""
        at = self.ctx.now()
        held_at = datetime.now(UTC)
        held = self.inflight.hold(_record(call, held_at), held_at)
        task = asyncio.create_task(self._store(call, at, held),
                                   name=f"emergency order {call.uniqueid}")
        self._pending[task] = (call, held)
        task.add_done_callback(self._pending.pop)
        return task

    async def _store(self, call: EmergencyCall, at: datetime, held: Path | None
                     ) -> StoredOrder | None:
        """Write until stored; spooled (None) after GIVE_UP_S, or when cancelled at a stop."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + GIVE_UP_S
        try:
            stored = await stored_with_retries(
                self.ctx.urgent_writing, lambda session: store_emergency_order(session, call, at),
                log, "emergency order for call %s not stored (try %d); trying again",
                call.uniqueid, give_up=lambda: loop.time() >= give_up)
            if stored.value is not None:
                order, announcement = stored.value
                self._stored[call.uniqueid] = held  # kept until its call record is stored
                if announcement is not None:
                    await self.ctx.live.publish_stored(announcement)
                if self.ctx.on_emergency is not None:
                    self.ctx.on_emergency(order.id, call.elder_id)
                return order
        except asyncio.CancelledError:  # the engine stops: the spool replay takes it over
            self._spool(call, held)
            return None
        except Exception:  # a fault of no known kind: the spool replay takes the order
            log.exception("emergency order for call %s failed; spooling it", call.uniqueid)
        await asyncio.to_thread(self._spool, call, held)
        return None

    async def store_call_record(self, record: dict[str, Any]) -> None:
        """Write a call's record (``dispatch.calls.record_call`` fields), in the background
        until stored if refused. Once it is stored, now or later, an emergency's in-flight
        record goes; until then a killed engine leaves it for another engine's replay, which
        writes the call record the dead one could not."""
        uniqueid = record["uniqueid"]
        held = self._stored.pop(uniqueid, None)
        await self.ctx.patient_writes.store(
            uniqueid, f"call record for {uniqueid}",
            lambda session: record_call(session, **record),
            on_stored=(lambda: self.inflight.release(held)) if held is not None else None,
            sessions=lambda: self.ctx.batched(write=True, urgent=False))

    def _spool(self, call: EmergencyCall, held: Path | None) -> None:
        """Hand the order to the spool replay: its in-flight record moves there (written
        afresh if the disk had refused it); logged at ERROR if even that fails (a record
        still in flight is adopted by a later replay)."""
        now = datetime.now(UTC)
        try:
            if held is not None:
                path = self.inflight.to_spool(held)
            else:
                record = _record(call, now)
                path = write_atomically(
                    Path(self.ctx.settings.spool.dir), record_name(record, now),
                    json.dumps(record, ensure_ascii=False).encode("utf-8"))
        except OSError as exc:
            log.error("emergency order for call %s neither stored nor spooled: %s",
                      call.uniqueid, exc)
            return
        log.warning("emergency order for call %s not stored: spooled as %s for the replay",
                    call.uniqueid, path.name)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def close(self) -> None:
        """Stop trying: every order not stored yet goes to the spool."""
        pending = list(self._pending.items())
        for task, _call in pending:
            task.cancel()
        await asyncio.gather(*(task for task, _ in pending), return_exceptions=True)
        for task, (call, held) in pending:
            if task.cancelled():  # cancelled before its first step: nothing spooled it
                self._spool(call, held)
        self.inflight.close()


def _record(call: EmergencyCall, now: datetime) -> dict[str, object]:
    """The call's version-1 spool record, as the dialplan's script writes it."""
    return spool_record(call.uniqueid, call.linkedid, call.channel, call.caller,
                        call.caller_name, call.reason, "", now)
