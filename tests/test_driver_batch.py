"""The same call-path statement of many callers, sent together on PostgreSQL
(``dispatch/driver_batch.py``): the statements that arrive while one is on its way go in one
checkout, each caller still gets its own outcome (a refused one refuses only its caller), a
batch nobody waits for any more is not stored, and reads sort their rows out by caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import String, bindparam, cast, column, event, insert, select, table, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable

from dispatch.db import async_sessionmaker_for, make_async_engine, make_sync_engine
from dispatch.driver_batch import batchable, batched_rows, batched_write
from dispatch.hotpath import write_transaction
from tests.storage import table_locked

NOTES = table("batch_notes", column("n"), column("label"))
ADD_NOTE = batchable(insert(NOTES).values(n=bindparam("n"), label=bindparam("label"))
                     .returning(NOTES.c.n))
NOTES_LABELLED = (select(cast(bindparam("label", type_=String), String).label("asked"), NOTES.c.n)
                  .where(NOTES.c.label == bindparam("label")).order_by(NOTES.c.n))


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(pg_url, pool_size=4)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE batch_notes (n integer PRIMARY KEY, label text)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def _until_a_write_waits(engine: AsyncEngine) -> None:
    """Until a statement of ours waits on the server for the table lock."""
    reader = make_async_engine(str(engine.url.render_as_string(hide_password=False)),
                               pool_size=1)
    try:
        for _ in range(500):
            async with reader.connect() as conn:
                waiting = (await conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted"))).scalar_one()
            if waiting:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("no write ever waited for the lock")
    finally:
        await reader.dispose()


async def _notes(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return sorted((await conn.execute(select(NOTES.c.n))).scalars())


async def test_the_writes_of_the_moment_share_a_checkout_and_a_refusal_is_its_own(
        engine: AsyncEngine, pg_url: str) -> None:
    checkouts = []
    event.listen(engine.sync_engine, "checkout", lambda *_: checkouts.append(1))
    with table_locked(pg_url, "batch_notes"):
        first = asyncio.ensure_future(batched_write(engine, ADD_NOTE, {"n": 0, "label": "a"}))
        await _until_a_write_waits(engine)  # the first, alone, on its way
        numbers = [*range(1, 21), 5]  # the second 5 is refused: the key is taken
        rest = [asyncio.ensure_future(batched_write(engine, ADD_NOTE, {"n": n, "label": "b"}))
                for n in numbers]
        await asyncio.sleep(0)
    assert await first == (0,)
    outcomes = await asyncio.gather(*rest, return_exceptions=True)
    assert [tuple(row) for row in outcomes[:20]] == [(n,) for n in range(1, 21)]
    assert isinstance(outcomes[20], IntegrityError)
    assert len(checkouts) == 2  # the first alone, then the 21 others together
    assert await _notes(engine) == list(range(21))


async def test_a_batch_nobody_waits_for_is_not_stored(engine: AsyncEngine, pg_url: str
                                                      ) -> None:
    with table_locked(pg_url, "batch_notes"):
        write = asyncio.ensure_future(batched_write(engine, ADD_NOTE, {"n": 1, "label": "a"}))
        await _until_a_write_waits(engine)
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write  # returns once the statement is cancelled on the server
    assert await batched_write(engine, ADD_NOTE, {"n": 2, "label": "a"}) == (2,)
    assert await _notes(engine) == [2]


async def test_a_caller_cut_off_leaves_the_others_of_its_batch_stored(
        engine: AsyncEngine, pg_url: str) -> None:
    with table_locked(pg_url, "batch_notes"):
        first = asyncio.ensure_future(batched_write(engine, ADD_NOTE, {"n": 0, "label": "a"}))
        await _until_a_write_waits(engine)
        batch = [asyncio.ensure_future(batched_write(engine, ADD_NOTE, {"n": n, "label": "b"}))
                 for n in (1, 2, 3)]
        await asyncio.sleep(0)
        batch[1].cancel()  # cut off before its batch went: left out of it
        first.cancel()  # the first batch's only caller: that batch is cancelled
        with pytest.raises(asyncio.CancelledError):
            await first
    assert [tuple(row) for row in await asyncio.gather(batch[0], batch[2])] == [(1,), (3,)]
    with pytest.raises(asyncio.CancelledError):
        await batch[1]
    assert await _notes(engine) == [1, 3]


async def test_reads_of_the_moment_sort_their_rows_out_by_caller(engine: AsyncEngine) -> None:
    for n, label in [(1, "a"), (2, "b"), (3, "a"), (4, "c")]:
        await batched_write(engine, ADD_NOTE, {"n": n, "label": label})
    asked = ["a", "b", "a", "none", "c"]
    found = await asyncio.gather(*(batched_rows(engine, NOTES_LABELLED, "label",
                                                {"label": label}) for label in asked))
    assert [[row[1] for row in rows] for rows in found] == [[1, 3], [2], [1, 3], [], [4]]


PLAIN_NOTE = insert(NOTES).values(n=bindparam("n"), label=bindparam("label")).returning(NOTES.c.n)


@pytest.mark.parametrize("statement", [ADD_NOTE, PLAIN_NOTE], ids=["batched", "alone"])
async def test_a_connection_the_server_ended_is_dropped_not_pooled(
        pg_url: str, statement: Executable) -> None:
    """The server ends the pool's only connection (an administrator, a restart): the write
    on it fails, and the next write gets a fresh connection instead of failing again."""
    engine = make_async_engine(pg_url, pool_size=1)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE batch_notes (n integer PRIMARY KEY, label text)"))
        backend = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    admin = make_sync_engine(pg_url)
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"),
                                {"pid": backend}).scalar_one()
        async with async_sessionmaker_for(engine)() as session:
            with pytest.raises(DBAPIError):
                await write_transaction(session, (statement, {"n": 1, "label": "a"}))
            assert await write_transaction(session, (statement, {"n": 2, "label": "a"})) == (2,)
        assert await _notes(engine) == [2]
    finally:
        admin.dispose()
        await engine.dispose()
