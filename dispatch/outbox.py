"""The event outbox: what the consoles must hear, written with the state it announces.

An alert is a row of ``event_outbox`` inserted in the same transaction as the order, alarm
event or call record it announces; the engine then publishes the row to the Redis stream
(the entry carries ``outbox_id``) and marks it published only after XADD succeeded. A row
left unpublished (Redis down, the engine killed in between) is published by the relay loop
later: at least once, de-duplicated by consoles on ``outbox_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.console_events import ConsoleEvent, ConsoleEventError, from_payload
from dispatch.hotpath import Planned, write_transaction
from dispatch.models import OutboxEntry

log = logging.getLogger(__name__)

_INSERT = (insert(OutboxEntry)
           .values({name: bindparam(name) for name in ("kind", "payload", "created_at")})
           .returning(OutboxEntry.id))


@dataclass(frozen=True, slots=True)
class Announcement:
    """One committed outbox row, ready to publish."""

    outbox_id: int
    event: ConsoleEvent


async def add(session: AsyncSession, event: ConsoleEvent, at: datetime) -> Announcement:
    """Insert an outbox row in the session's transaction (the caller commits)."""
    outbox_id = (await session.execute(
        insert(OutboxEntry).values(kind=event.name.value, payload=event.payload(),
                                   created_at=at)
        .returning(OutboxEntry.id))).scalar_one()
    return Announcement(int(outbox_id), event)


def outbox_row(event: ConsoleEvent, at: datetime) -> Planned:
    """The statement that inserts one outbox row, for a write transaction; the engines'
    relay publishes it."""
    return _INSERT, {"kind": event.name.value, "payload": event.payload(), "created_at": at}


async def add_committed(session: AsyncSession, event: ConsoleEvent, at: datetime
                        ) -> Announcement:
    """Insert and commit one outbox row on its own, straight through the driver (the call
    path's route: on SQLite a bounded wait on the writer thread, never on the event loop)."""
    row = await write_transaction(
        session, (_INSERT, {"kind": event.name.value, "payload": event.payload(),
                            "created_at": at}))
    assert row is not None
    return Announcement(int(row[0]), event)


async def pending(session: AsyncSession, limit: int = 500) -> list[Announcement]:
    """Rows not yet published, oldest first; a row that is no known event (written by
    another version) is logged and left unpublished."""
    rows = await session.execute(
        select(OutboxEntry.id, OutboxEntry.kind, OutboxEntry.payload)
        .where(OutboxEntry.published_at.is_(None)).order_by(OutboxEntry.id).limit(limit))
    entries = []
    for outbox_id, kind, payload in rows:
        try:
            entries.append(Announcement(int(outbox_id), from_payload(kind, payload)))
        except ConsoleEventError as exc:
            log.error("outbox row %s not published: %s", outbox_id, exc)
    return entries


async def mark_published(session: AsyncSession, ids: Iterable[int], at: datetime) -> None:
    """Record that the stream has these rows; COMMIT."""
    wanted = list(ids)
    if wanted:
        await session.execute(
            update(OutboxEntry).where(OutboxEntry.id.in_(wanted),
                                      OutboxEntry.published_at.is_(None))
            .values(published_at=at))
    await session.commit()


async def reopen_published_since(session: AsyncSession, since: datetime) -> int:
    """Mark the rows published since ``since`` unpublished again, for the relay to send
    once more (a new Redis server may lack them); COMMIT. Returns how many."""
    result = await session.execute(
        update(OutboxEntry).where(OutboxEntry.published_at >= since).values(published_at=None))
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def prune(session: AsyncSession, published_before: datetime, limit: int = 5000) -> int:
    """Delete up to ``limit`` rows published before ``published_before`` (the stream has
    trimmed their entries by then; unpublished rows are never deleted); COMMIT. Returns how
    many went."""
    oldest = (select(OutboxEntry.id).where(OutboxEntry.published_at < published_before)
              .order_by(OutboxEntry.id).limit(limit))
    result = await session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_(oldest)))
    await session.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
