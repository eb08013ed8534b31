"""Listens to Asterisk's queue events and records each caller's wait, answer or abandonment.

app_queue raises ``QueueCallerAbandon`` whenever a caller leaves a queue unanswered: on a
hang-up, but also when ``Queue()`` times out (EXITWITHTIMEOUT) or the queue empties
(EXITEMPTY), after which the dialplan goes on (the overflow queue, the call-back promise). So
an abandon is only noted; the caller *abandoned* the wait if the channel then hangs up
(``Hangup``) before joining a queue again, being answered or being given up on by the
dialplan (``HotlineCallbackNeeded``). The wait's ``abandoned_at`` is the moment of that last
abandon.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from dispatch.console_events import QueueAbandoned
from dispatch.queue_calls import note_queue_event
from ivr.ami.link import EventSource
from ivr.ami.messages import AmiMessage
from ivr.context import EngineContext
from ivr.dialplan_contract import UserEventName
from ivr.metrics import QUEUE_WAIT_SECONDS

log = logging.getLogger(__name__)

PENDING_KEEP = timedelta(hours=6)  # an abandon not followed by a Hangup is forgotten after


class QueueTracker:
    """AMI event handlers writing the queue_calls record (idempotent across processes),
    each write in the background until stored (``ivr/patient_writes.py``)."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        # uniqueid -> when it last left a queue unanswered, until we know what came next
        self._left_unanswered: OrderedDict[str, datetime] = OrderedDict()

    def subscribe(self, ami: EventSource) -> None:
        ami.on_event("UserEvent", self.on_user_event)
        ami.on_event("QueueCallerJoin", self.on_join)
        ami.on_event("AgentConnect", self.on_connect)
        ami.on_event("QueueCallerAbandon", self.on_abandon)
        ami.on_event("QueueCallerLeave", self.on_leave)
        ami.on_event("Hangup", self.on_hangup)

    async def on_user_event(self, message: AmiMessage) -> None:
        kind = message.get("UserEvent")
        if kind == UserEventName.QUEUED:
            await self._note(message, queued_at=self.ctx.now(), reason=message.get("Reason"),
                             priority=_int(message.get("QueuePriority")),
                             caller_number=message.get("CallerIDNum"))
        elif kind == UserEventName.CALLBACK_NEEDED:
            self._left_unanswered.pop(message.get("Uniqueid"), None)
            await self._note(message, outcome="unanswered", left_at=self.ctx.now())

    async def on_join(self, message: AmiMessage) -> None:
        self._left_unanswered.pop(message.get("Uniqueid"), None)  # waiting again
        await self._note(message, joined_at=self.ctx.now(), queue=message.get("Queue"))

    async def on_connect(self, message: AmiMessage) -> None:
        self._left_unanswered.pop(message.get("Uniqueid"), None)
        _observe_wait("answered", message)
        await self._note(message, answered_at=self.ctx.now(), outcome="answered",
                         operator=message.get("MemberName") or message.get("Interface"))

    async def on_abandon(self, message: AmiMessage) -> None:
        """Left a queue unanswered: a hang-up, or a timeout the dialplan goes on from."""
        uniqueid = message.get("Uniqueid")
        if not uniqueid:
            return
        _observe_wait("left_unanswered", message)
        now = self.ctx.now()
        pending = self._left_unanswered
        pending.pop(uniqueid, None)
        pending[uniqueid] = now
        while pending and next(iter(pending.values())) < now - PENDING_KEEP:
            pending.popitem(last=False)

    async def on_leave(self, message: AmiMessage) -> None:
        await self._note(message, left_at=self.ctx.now())

    async def on_hangup(self, message: AmiMessage) -> None:
        """The channel is gone: if it last left a queue unanswered, the caller abandoned."""
        left = self._left_unanswered.pop(message.get("Uniqueid"), None)
        if left is not None:
            await self._note(message, abandoned_at=left, outcome="abandoned")
            await self.ctx.live.publish(QueueAbandoned(uniqueid=message.get("Uniqueid"),
                                                       linkedid=message.get("Linkedid")))

    async def _note(self, message: AmiMessage, **fields: Any) -> None:
        uniqueid = message.get("Uniqueid")
        if not uniqueid:
            return
        linkedid = message.get("Linkedid")
        self.ctx.patient_writes.add(
            uniqueid, f"queue event for {uniqueid}",
            lambda session: note_queue_event(session, uniqueid, linkedid=linkedid, **fields))


def _observe_wait(outcome: str, message: AmiMessage) -> None:
    """app_queue's ``HoldTime`` (seconds in the queue) into the queue-wait histogram."""
    held = _int(message.get("HoldTime"))
    if held is not None and held >= 0:
        QUEUE_WAIT_SECONDS.labels(outcome).observe(held)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
