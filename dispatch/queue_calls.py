"""The operator queue as the record sees it: when each caller queued, was answered or gave up.

Every engine process receives the same AMI events, so each write only fills fields still
empty: the first process to record a moment wins, and replays change nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.hotpath import write_transaction
from dispatch.models import QueueCall

FIELDS = frozenset({
    "linkedid", "queue", "reason", "priority", "caller_number", "queued_at", "joined_at",
    "answered_at", "operator", "abandoned_at", "left_at", "outcome",
})


async def note_queue_event(session: AsyncSession, uniqueid: str, **fields: Any) -> None:
    """Record what an AMI event says about ``uniqueid``'s wait, keeping earlier values: one
    statement, so one round trip with no transaction around it."""
    names = tuple(sorted(name for name, value in fields.items() if value is not None))
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValueError(f"unknown queue call fields: {sorted(unknown)}")
    params = {"uid": uniqueid, **{name: fields[name] for name in names}}
    await write_transaction(session, (_upsert(names), params))


_UPSERTS: dict[tuple[str, ...], Any] = {}


def _upsert(names: tuple[str, ...]) -> Any:
    """INSERT of the call's row, or on its uniqueid's conflict an UPDATE of each named column
    that is still empty (cached per shape). PostgreSQL's construct; SQLite compiles the same
    ON CONFLICT clause."""
    statement = _UPSERTS.get(names)
    if statement is None:
        columns = QueueCall.__table__.c
        inserted = insert(QueueCall).values(
            {"uniqueid": bindparam("uid", type_=columns.uniqueid.type),
             **{name: bindparam(name, type_=columns[name].type) for name in names}})
        statement = _UPSERTS[names] = (
            inserted.on_conflict_do_update(
                index_elements=[columns.uniqueid],
                set_={name: func.coalesce(columns[name], inserted.excluded[name])
                      for name in names})
            if names else inserted.on_conflict_do_nothing(index_elements=[columns.uniqueid]))
    return statement


async def queue_calls_between(session: AsyncSession, since: datetime, until: datetime
                              ) -> list[QueueCall]:
    rows = await session.scalars(
        select(QueueCall)
        .where(QueueCall.queued_at >= since, QueueCall.queued_at < until)
        .order_by(QueueCall.queued_at)
    )
    return list(rows)
