"""The operator queue as the record sees it: when each caller queued, was answered or gave up.

Every engine process receives the same AMI events, so each write only fills fields still
empty: the first process to record a moment wins, and replays change nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import QueueCall

FIELDS = frozenset({
    "linkedid", "queue", "reason", "priority", "caller_number", "queued_at", "joined_at",
    "answered_at", "operator", "abandoned_at", "left_at", "outcome",
})


async def note_queue_event(session: AsyncSession, uniqueid: str, **fields: Any) -> None:
    """Record what an AMI event says about ``uniqueid``'s wait, keeping earlier values."""
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValueError(f"unknown queue call fields: {sorted(unknown)}")
    values = {key: value for key, value in fields.items() if value is not None}
    for _attempt in range(2):
        try:
            existing = await session.scalar(select(QueueCall).where(QueueCall.uniqueid == uniqueid))
            if existing is None:
                session.add(QueueCall(uniqueid=uniqueid, **values))
            else:
                empty = {k: v for k, v in values.items() if getattr(existing, k) is None}
                if empty:
                    await session.execute(
                        update(QueueCall).where(QueueCall.id == existing.id).values(**empty)
                    )
            await session.commit()
            return
        except IntegrityError:  # another engine process inserted it first: update instead
            await session.rollback()
    raise RuntimeError(f"queue call {uniqueid} could not be recorded")


async def queue_calls_between(session: AsyncSession, since: datetime, until: datetime
                              ) -> list[QueueCall]:
    rows = await session.scalars(
        select(QueueCall)
        .where(QueueCall.queued_at >= since, QueueCall.queued_at < until)
        .order_by(QueueCall.queued_at)
    )
    return list(rows)
