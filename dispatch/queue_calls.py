"""The operator queue as the record sees it: when each caller queued, was answered or gave up.

Every engine process receives the same AMI events, so each write only fills fields still
empty: the first process to record a moment wins, and replays change nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.hotpath import write_transaction
from dispatch.models import QueueCall

FIELDS = frozenset({
    "linkedid", "queue", "reason", "priority", "caller_number", "queued_at", "joined_at",
    "answered_at", "operator", "abandoned_at", "left_at", "outcome",
})


async def note_queue_event(session: AsyncSession, uniqueid: str, **fields: Any) -> None:
    """Record what an AMI event says about ``uniqueid``'s wait, keeping earlier values."""
    names = tuple(sorted(name for name, value in fields.items() if value is not None))
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValueError(f"unknown queue call fields: {sorted(unknown)}")
    params = {"uid": uniqueid, **{name: fields[name] for name in names}}
    follow = [(_fill(names), params)] if names else []
    for _attempt in range(2):
        try:
            await write_transaction(session, (_INSERT_IF_NEW, {"uid": uniqueid}),
                                    lambda _row: follow)
            return
        except IntegrityError:  # another engine process inserted it at the same moment
            continue
    raise RuntimeError(f"queue call {uniqueid} could not be recorded")


_INSERT_IF_NEW = insert(QueueCall).from_select(
    ["uniqueid"],
    select(bindparam("uid", type_=QueueCall.uniqueid.type)).where(
        ~exists().where(QueueCall.uniqueid == bindparam("uid"))
    ),
)
_FILLS: dict[tuple[str, ...], Any] = {}


def _fill(names: tuple[str, ...]) -> Any:
    """UPDATE setting each named column only where it is still empty (cached per shape)."""
    statement = _FILLS.get(names)
    if statement is None:
        columns = QueueCall.__table__.c
        statement = _FILLS[names] = (
            update(QueueCall)
            .where(QueueCall.uniqueid == bindparam("uid"))
            .values({name: func.coalesce(columns[name], bindparam(name, type_=columns[name].type))
                     for name in names})
        )
    return statement


async def queue_calls_between(session: AsyncSession, since: datetime, until: datetime
                              ) -> list[QueueCall]:
    rows = await session.scalars(
        select(QueueCall)
        .where(QueueCall.queued_at >= since, QueueCall.queued_at < until)
        .order_by(QueueCall.queued_at)
    )
    return list(rows)
