"""The event outbox: what the consoles must hear, written with the state it announces.

An alert is a row of ``event_outbox`` inserted in the same transaction as the order, alarm
event or call record it announces; the engine then publishes the row to the Redis stream
(the entry carries ``outbox_id``) and marks it published only after XADD succeeded. A row
left unpublished (Redis down, the engine killed in between) is published by the relay loop
later: at least once, de-duplicated by consoles on ``outbox_id``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.hotpath import write_transaction
from dispatch.models import OutboxEntry

_INSERT = (insert(OutboxEntry)
           .values({name: bindparam(name) for name in ("kind", "payload", "created_at")})
           .returning(OutboxEntry.id))


@dataclass(frozen=True, slots=True)
class Announcement:
    """One committed outbox row, ready to publish."""

    outbox_id: int
    kind: str
    payload: dict[str, Any]


def plain(value: Any) -> Any:
    """``value`` made of JSON types only (enums, dates, paths as text)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value if isinstance(value, int | float | bool | str | type(None)) else str(value)


async def add(session: AsyncSession, kind: str, payload: Mapping[str, Any], at: datetime
              ) -> Announcement:
    """Insert an outbox row in the session's transaction (the caller commits)."""
    body = plain(payload)
    outbox_id = (await session.execute(
        insert(OutboxEntry).values(kind=kind[:40], payload=body, created_at=at)
        .returning(OutboxEntry.id))).scalar_one()
    return Announcement(int(outbox_id), kind, body)


def outbox_row(kind: str, payload: Mapping[str, Any], at: datetime) -> tuple[Any, dict[str, Any]]:
    """The statement that inserts one outbox row, for a write transaction; the engines'
    relay publishes it."""
    return _INSERT, {"kind": kind[:40], "payload": plain(payload), "created_at": at}


async def add_committed(session: AsyncSession, kind: str, payload: Mapping[str, Any],
                        at: datetime) -> Announcement:
    """Insert and commit one outbox row on its own, straight through the driver (the call
    path's route: on SQLite a bounded wait on the writer thread, never on the event loop)."""
    body = plain(payload)
    row = await write_transaction(
        session, (_INSERT, {"kind": kind[:40], "payload": body, "created_at": at}))
    assert row is not None
    return Announcement(int(row[0]), kind, body)


async def pending(session: AsyncSession, limit: int = 500) -> list[Announcement]:
    """Rows not yet published, oldest first."""
    rows = await session.execute(
        select(OutboxEntry.id, OutboxEntry.kind, OutboxEntry.payload)
        .where(OutboxEntry.published_at.is_(None)).order_by(OutboxEntry.id).limit(limit))
    return [Announcement(int(i), kind, payload) for i, kind, payload in rows]


async def mark_published(session: AsyncSession, ids: Iterable[int], at: datetime) -> None:
    """Record that the stream has these rows; COMMIT."""
    wanted = list(ids)
    if wanted:
        await session.execute(
            update(OutboxEntry).where(OutboxEntry.id.in_(wanted),
                                      OutboxEntry.published_at.is_(None))
            .values(published_at=at))
    await session.commit()
