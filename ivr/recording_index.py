"""Indexes the calls the dialplan records: the ``HotlineRecording`` event raised as MixMonitor
starts carries the file's name inside the recordings folder (the dialplan's
HOTLINE_RECORDINGS_DIR on the PBX, ``[recordings] dir`` here), the call's uniqueid and, when
the engine knew them, the elder and the order. Each becomes a ``recordings`` row
(``dispatch/recordings.py``), written in the background until stored; several engines seeing
the same event store it once (the file is unique). A name that is not a plain relative path
is refused.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import Recording, RecordingKind
from dispatch.recordings import NewRecording, add_recording, safe_relative
from ivr.ami.link import EventSource
from ivr.ami.messages import AmiMessage
from ivr.context import EngineContext
from ivr.dialplan_contract import UserEventName

log = logging.getLogger(__name__)


class RecordingIndex:
    """The AMI handler that indexes each recorded call."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    def subscribe(self, ami: EventSource) -> None:
        ami.on_event("UserEvent", self.on_user_event)

    async def on_user_event(self, message: AmiMessage) -> None:
        if message.get("UserEvent") != UserEventName.RECORDING:
            return
        uniqueid, file = message.get("Uniqueid"), message.get("File")
        if not uniqueid or not file:
            log.warning("recording event without its call (%s) or its file", uniqueid)
            return
        relative = safe_relative(file)
        if relative is None:
            log.error("call %s: recording name %r refused (not a relative path inside the "
                      "recordings folder)", uniqueid, file[:80])
            return
        new = NewRecording(kind=RecordingKind.CALL, uniqueid=uniqueid, file=relative,
                           started_at=self.ctx.now(), duration_s=None,
                           elder_id=_id(message.get("ElderId")),
                           order_id=_id(message.get("OrderId")),
                           caller_number=message.get("CallerIDNum") or None)
        self.ctx.patient_writes.add(uniqueid, f"recording of call {uniqueid}",
                                    lambda session: _index_once(session, new))


async def _index_once(session: AsyncSession, new: NewRecording) -> None:
    """Index ``new`` unless another engine did; an elder or order the database does not know
    is left out rather than the recording."""
    try:
        await add_recording(session, new)
    except IntegrityError:
        await session.rollback()
        if await session.scalar(select(Recording.id).where(Recording.file == new.file)) is None:
            await add_recording(session, replace(new, elder_id=None, order_id=None))


def _id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None
