"""Listens to Asterisk's queue events and records each caller's wait, answer or abandonment."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from dispatch.queue_calls import note_queue_event
from ivr.context import EngineContext

log = logging.getLogger(__name__)


class QueueTracker:
    """AMI event handlers writing the queue_calls record (idempotent across processes)."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    def subscribe(self, ami: Any) -> None:
        ami.on_event("UserEvent", self.on_user_event)
        ami.on_event("QueueCallerJoin", self.on_join)
        ami.on_event("AgentConnect", self.on_connect)
        ami.on_event("QueueCallerAbandon", self.on_abandon)
        ami.on_event("QueueCallerLeave", self.on_leave)

    async def on_user_event(self, message: Any) -> None:
        kind = message.get("UserEvent")
        if kind == "HotlineQueued":
            await self._note(message, queued_at=self.ctx.now(), reason=message.get("Reason"),
                             priority=_int(message.get("QueuePriority")),
                             caller_number=message.get("CallerIDNum"))
        elif kind == "HotlineCallbackNeeded":
            await self._note(message, outcome="unanswered", left_at=self.ctx.now())

    async def on_join(self, message: Any) -> None:
        await self._note(message, joined_at=self.ctx.now(), queue=message.get("Queue"))

    async def on_connect(self, message: Any) -> None:
        await self._note(message, answered_at=self.ctx.now(), outcome="answered",
                         operator=message.get("MemberName") or message.get("Interface"))

    async def on_abandon(self, message: Any) -> None:
        await self._note(message, abandoned_at=self.ctx.now(), outcome="abandoned")

    async def on_leave(self, message: Any) -> None:
        await self._note(message, left_at=self.ctx.now())

    async def _note(self, message: Any, **fields: Any) -> None:
        uniqueid = message.get("Uniqueid")
        if not uniqueid:
            return
        try:
            async with self.ctx.writing() as session:
                await note_queue_event(session, uniqueid, linkedid=message.get("Linkedid"),
                                       **fields)
        except (SQLAlchemyError, OSError, RuntimeError) as exc:
            log.error("queue event for %s not stored: %s", uniqueid, exc)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None
