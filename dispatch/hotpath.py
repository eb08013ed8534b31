"""Writes on the call path, straight through the database driver.

Through an ORM session, an order costs about 4 ms of CPU on the engine's event loop; the same
statements sent by the driver cost under 1 ms. The statements are still SQLAlchemy Core
constructs, compiled once per dialect, and their parameters still pass through SQLAlchemy's
type processing (enums, UTC timestamps, JSON), so rows are identical whichever route wrote
them. SQLite writes run on one writer thread per database: a WAL commit takes microseconds,
but another process holding the write lock (a bulk import, a backup) must never stall the
event loop, so the loop only awaits the thread, which waits at most ``SQLITE_WRITE_WAIT_S``
for the lock and then fails the write (the call goes to a human).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql import Executable

from dispatch.db import _sqlite_file, compiled
from dispatch.driver_batch import batched_write, is_batchable, pooled_driver, storage_error

Planned = tuple[Executable, dict[str, Any]]
FollowUp = Callable[[Sequence[Any] | None], Sequence[Planned]]


def _no_follow_up(_row: Sequence[Any] | None) -> Sequence[Planned]:
    return ()


SQLITE_WRITE_WAIT_S = 3.0  # the longest a call-path write waits for another writer's lock

_writers = threading.local()
_writer_threads: weakref.WeakKeyDictionary[Any, ThreadPoolExecutor] = weakref.WeakKeyDictionary()
_writer_threads_lock = threading.Lock()


def _writer_thread(engine: AsyncEngine) -> ThreadPoolExecutor:
    """The one thread that writes to ``engine``'s SQLite file (its connection lives there)."""
    with _writer_threads_lock:
        executor = _writer_threads.get(engine.sync_engine)
        if executor is None:
            executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
            _writer_threads[engine.sync_engine] = executor
            weakref.finalize(engine.sync_engine, executor.shutdown, wait=False)
        return executor


def _sqlite_writer(engine: AsyncEngine) -> sqlite3.Connection | None:
    cache: weakref.WeakKeyDictionary[Any, sqlite3.Connection] | None = getattr(
        _writers, "cache", None
    )
    if cache is None:
        cache = _writers.cache = weakref.WeakKeyDictionary()
    writer = cache.get(engine.sync_engine)
    if writer is None:
        path = _sqlite_file(engine.url) if engine.dialect.name == "sqlite" else None
        if path is None:
            return None
        writer = sqlite3.connect(path, isolation_level=None)
        for pragma in (f"PRAGMA busy_timeout={int(SQLITE_WRITE_WAIT_S * 1000)}",
                       "PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL"):
            writer.execute(pragma)
        cache[engine.sync_engine] = writer
    return writer


async def write_transaction(
    session: AsyncSession, first: Planned, then: FollowUp | None = None
) -> Sequence[Any] | None:
    """Run ``first`` (its RETURNING row, if any, is returned) and the statements ``then``
    builds from that row, in one committed transaction. A single statement (no ``then``) is
    sent on its own, atomic without BEGIN and COMMIT: one round trip instead of three; on
    PostgreSQL a ``batchable`` one goes with other callers' (``dispatch/driver_batch.py``).

    A session bound to an engine writes through the driver; a session bound to a connection
    (a test's outer transaction) runs the same statements through SQLAlchemy.
    """
    return (await write_transaction_rows(session, first, then))[0]


async def write_transaction_rows(
    session: AsyncSession, first: Planned, then: FollowUp | None = None
) -> list[Sequence[Any] | None]:
    """``write_transaction``, giving every statement's first RETURNING row (None for a
    statement without one), ``first``'s first."""
    then = then or _no_follow_up
    bind = session.bind
    if not isinstance(bind, AsyncEngine):
        return await _session_write(session, first, then)
    if bind.dialect.name == "sqlite" and _sqlite_file(bind.url) is not None:
        return await asyncio.get_running_loop().run_in_executor(
            _writer_thread(bind), _sqlite_write_in_thread, bind, first, then)
    if bind.dialect.driver == "asyncpg":
        if then is _no_follow_up and is_batchable(first[0]):
            return [await batched_write(bind, *first)]
        return await _asyncpg_write(bind, first, then)
    return await _session_write(session, first, then)


async def _session_write(session: AsyncSession, first: Planned, then: FollowUp
                         ) -> list[Sequence[Any] | None]:
    rows: list[Sequence[Any] | None] = []
    try:
        for statement, params in _statements(first, then, rows):
            result = await session.execute(statement, params)
            rows.append(result.first() if result.returns_rows else None)
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    return rows


def _statements(first: Planned, then: FollowUp, rows: list[Sequence[Any] | None]
                ) -> Iterator[Planned]:
    """``first``, then (once its row is in ``rows``) the statements ``then`` builds."""
    yield first
    yield from then(rows[0])


async def _asyncpg_write(engine: AsyncEngine, first: Planned, then: FollowUp
                         ) -> list[Sequence[Any] | None]:
    dialect = engine.dialect
    async with pooled_driver(engine) as lent:
        driver = lent.driver
        if then is _no_follow_up:
            step = compiled(first[0], dialect)
            lent.sql = step.sql
            return [await driver.fetchrow(step.sql, *step.args(first[1]))]
        rows: list[Sequence[Any] | None] = []
        async with driver.transaction():
            for statement, params in _statements(first, then, rows):
                step = compiled(statement, dialect)
                lent.sql = step.sql
                rows.append(await driver.fetchrow(step.sql, *step.args(params)))
        return rows


def _sqlite_write_in_thread(engine: AsyncEngine, first: Planned, then: FollowUp
                            ) -> list[Sequence[Any] | None]:
    writer = _sqlite_writer(engine)
    assert writer is not None
    return _sqlite_write(writer, engine.dialect, first, then)


def _sqlite_write(writer: sqlite3.Connection, dialect: Dialect, first: Planned,
                  then: FollowUp) -> list[Sequence[Any] | None]:
    step = compiled(first[0], dialect)
    if then is _no_follow_up:
        try:
            found = writer.execute(step.sql, step.args(first[1])).fetchall()  # committed
            return [found[0] if found else None]
        except sqlite3.Error as exc:
            raise storage_error(exc, step.sql) from exc
    rows: list[Sequence[Any] | None] = []
    try:
        writer.execute("BEGIN IMMEDIATE")
        try:
            for statement, params in _statements(first, then, rows):
                step = compiled(statement, dialect)
                rows.append(writer.execute(step.sql, step.args(params)).fetchone())
            writer.execute("COMMIT")
        except BaseException:
            if writer.in_transaction:
                writer.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise storage_error(exc, step.sql) from exc
    return rows
