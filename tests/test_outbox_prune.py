"""Published outbox rows older than the stream's retention are pruned in batches, on SQLite
and PostgreSQL; unpublished rows, however old, and recent ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import OutboxEntry
from dispatch.outbox import prune

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # the rows' own times: no clock is read


async def _rows(session: AsyncSession, **kinds: tuple[int, datetime | None]) -> None:
    for kind, (count, published_at) in kinds.items():
        await session.execute(insert(OutboxEntry), [
            {"kind": kind, "payload": {}, "created_at": NOW - timedelta(days=30),
             "published_at": published_at} for _ in range(count)])
    await session.commit()


async def test_old_published_rows_go_a_batch_at_a_time(db_session: AsyncSession) -> None:
    cutoff = NOW - timedelta(days=7)
    await _rows(db_session, old_published=(7, cutoff - timedelta(seconds=1)),
                unpublished=(3, None), recent=(4, cutoff + timedelta(seconds=1)))
    assert await prune(db_session, cutoff, limit=5) == 5
    assert await prune(db_session, cutoff, limit=5) == 2
    assert await prune(db_session, cutoff, limit=5) == 0
    left = sorted((await db_session.scalars(select(OutboxEntry.kind))).all())
    assert left == ["recent"] * 4 + ["unpublished"] * 3
