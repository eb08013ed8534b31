"""A call-path write cancelled while PostgreSQL's answer to its BEGIN is on its way (a
timeout around a screen pop's outbox row, a caller hanging up) must not go back to the pool
with the driver believing a transaction is open: the server is in a transaction nobody will
commit, and every later "committed" write on that connection would silently stay
uncommitted (an order other connections cannot see, its call record refused by the foreign
key)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import column, func, insert, make_url, select, table, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.db import make_async_engine
from dispatch.hotpath import write_transaction
from tests.tcp_proxy import CuttableProxy

NOTES = table("cancel_notes", column("n"))


def _two_statements(_row: object) -> list[tuple[object, dict[str, int]]]:
    return [(insert(NOTES), {"n": -2})]


@pytest.mark.parametrize("marker", [b"BEGIN", b"__asyncpg_stmt_"], ids=["transaction", "single"])
async def test_a_write_cancelled_at_its_begin_leaves_the_pool_committing(
        pg_url: str, marker: bytes) -> None:
    """A transaction cancelled at its BEGIN, or a single statement (sent without one)
    cancelled while its answer is on its way: the later writes on the pool all commit."""
    url = make_url(pg_url)
    proxy = CuttableProxy(url.port or 5432)
    await proxy.start()
    engine = make_async_engine(url.set(port=proxy.port).render_as_string(hide_password=False),
                               pool_size=1)
    reader = make_async_engine(pg_url, pool_size=1)
    try:
        async with reader.begin() as conn:
            await conn.execute(text("CREATE TABLE cancel_notes (n integer)"))
        async with AsyncSession(engine) as session:
            for attempt in range(2):
                proxy.hold_replies_after(marker)
                write = asyncio.create_task(write_transaction(
                    session, (insert(NOTES), {"n": -1}),
                    *([_two_statements] if marker == b"BEGIN" else [])))
                await proxy.marker_sent.wait()  # the marker sent, its answer held
                write.cancel()
                proxy.release_replies()  # the pool's clean-up may need an answer
                with pytest.raises(asyncio.CancelledError):
                    await write
                for n in range(3):  # the pool's connections, the cancelled one's among them
                    await write_transaction(session, (insert(NOTES), {"n": attempt * 3 + n}))
        async with reader.connect() as conn:  # committed: another connection sees them all
            seen = (await conn.execute(select(func.array_agg(NOTES.c.n)))).scalar_one()
        # a cancelled transaction left nothing; a cancelled single statement may have run
        kept = [n for n in seen if n >= 0]
        assert sorted(kept) == list(range(6))
        assert -2 not in seen and (marker != b"BEGIN" or -1 not in seen)
    finally:
        await engine.dispose()
        await reader.dispose()
        await proxy.close()


@pytest.mark.parametrize("follow_up", [False, True], ids=["single", "transaction"])
async def test_a_write_on_a_connection_closed_under_it_is_a_storage_error(
        pg_url: str, follow_up: bool) -> None:
    """A pooled connection the database (or the network) closed: the write fails as a
    storage error, which every caller retries or spools (an emergency order is never lost
    to a driver error of another kind), and the next write gets a working connection."""
    engine = make_async_engine(pg_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE closed_notes (n integer)"))
        notes = table("closed_notes", column("n"))
        async with engine.connect() as conn:  # the pool's one connection, closed under it
            driver = (await conn.get_raw_connection()).driver_connection
            driver.terminate()
        async with AsyncSession(engine) as session:
            with pytest.raises(OperationalError):
                await write_transaction(session, (insert(notes), {"n": 1}),
                                        *([lambda _row: [(insert(notes), {"n": 2})]]
                                          if follow_up else []))
            await write_transaction(session, (insert(notes), {"n": 3}))
        async with engine.connect() as conn:
            assert (await conn.execute(select(notes.c.n))).scalars().all() == [3]
    finally:
        await engine.dispose()
