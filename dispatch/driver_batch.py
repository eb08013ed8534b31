"""The same call-path statement of many calls, sent together on PostgreSQL.

Sent alone, one statement costs the engine about 240 µs of CPU: a checkout from SQLAlchemy's
pool, the driver's bind and execute, its reply. On a busy minute hundreds of calls send the
same few statements (their caller's registry read, their order, their call record) at once;
here the ones that arrive while a batch is on its way go together in the next one, with one
checkout and one round trip (asyncpg's ``fetchmany``: about 8 µs a statement in a batch of
50). A statement sent when none is on its way goes at once, alone: no call waits for others.

A batch is atomic. If the database refuses one statement of it (an order's duplicate key),
nothing of it is stored, and each statement is sent again on its own, so each caller gets
its own outcome, as if it had been sent alone. A caller cut off before its batch went is
left out of it; a batch whose every caller is cut off while it runs is cancelled (asyncpg
cancels the statement on the server), so a statement cut off at an engine's stop is not
stored behind its back, as it was not when sent alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import weakref
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable

from dispatch.db import DriverStatement, compiled
from ivr.micro_batch import PayloadBatch

MOST_PER_BATCH = 256

_ONE_ROW_EACH: set[Executable] = set()


def batchable(statement: Executable) -> Executable:
    """Mark ``statement`` (a module constant) as safe to batch: each execution gives exactly
    one row, or none ever (no RETURNING), so a batch's rows map back to their callers.

    Only the call record and a caller's menu order are marked (with the registry read,
    ``batched_rows``): a batch's statements go one batch after another. Batched, a flood of
    background writes (the outbox rows, timeline events and queue entries of a disaster
    minute's escalations) waited behind each other, and the consoles' outbox rows missed
    their 200 ms thousands of times; batched emergency orders waited behind each other, and
    a disaster minute's answer -> queue p99 rose from about 0.5 s to 0.7-1.2 s (``python -m
    tests.bench --only emergency``). An emergency's order waits for no other's batch."""
    _ONE_ROW_EACH.add(statement)
    return statement


def is_batchable(statement: Executable) -> bool:
    return statement in _ONE_ROW_EACH


def storage_error(exc: BaseException, sql: str) -> DBAPIError:
    """The driver's error as the SQLAlchemy error an ORM route would have raised."""
    integrity = isinstance(
        exc, sqlite3.IntegrityError | asyncpg.exceptions.IntegrityConstraintViolationError
    )
    kind = IntegrityError if integrity else OperationalError
    return kind(sql, None, exc)


Outcome = Sequence[Any] | None | DBAPIError  # a write's row, or its own refusal
Read = tuple[Hashable, list[Any]]  # a read's tag value and its arguments


class _EngineBatches:
    """One engine's batches on one event loop: one per statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.loop = asyncio.get_running_loop()
        self._writes: dict[Executable, PayloadBatch[list[Any], Outcome]] = {}
        self._reads: dict[tuple[Executable, str], PayloadBatch[Read, list[Any]]] = {}

    async def write(self, statement: Executable, params: dict[str, Any]) -> Sequence[Any] | None:
        step = compiled(statement, self.engine.dialect)
        batch = self._writes.get(statement)
        if batch is None:
            batch = self._writes[statement] = PayloadBatch(
                lambda args: self._send_writes(step, args), MOST_PER_BATCH, abandon=True)
        outcome = await batch.submit(step.args(params))
        if isinstance(outcome, DBAPIError):
            raise outcome
        return outcome

    async def rows(self, statement: Executable, tag: str, params: dict[str, Any]
                   ) -> list[Sequence[Any]]:
        step = compiled(statement, self.engine.dialect)
        batch = self._reads.get((statement, tag))
        if batch is None:
            batch = self._reads[(statement, tag)] = PayloadBatch(
                lambda asked: self._send_reads(step, asked), MOST_PER_BATCH, abandon=True)
        return await batch.submit((params[tag], step.args(params)))

    async def _send_writes(self, step: DriverStatement, args: list[list[Any]]
                           ) -> list[Outcome]:
        async def send(lent: LentDriver) -> list[Outcome]:
            driver = lent.driver
            if len(args) > 1:
                try:
                    rows = await driver.fetchmany(step.sql, args)
                except asyncpg.exceptions.PostgresError as exc:
                    if _connection_lost(exc, driver):
                        raise
                    # nothing of the batch is stored: each goes again on its own
                else:
                    if rows and len(rows) != len(args):
                        raise AssertionError(f"not one row each: {step.sql}")
                    return list(rows) if rows else [None] * len(args)
            outcomes: list[Outcome] = []
            for one in args:
                try:
                    outcomes.append(await driver.fetchrow(step.sql, *one))
                except asyncpg.exceptions.PostgresError as exc:
                    if _connection_lost(exc, driver):  # the rest fail with it; the ones
                        lent.drop()  # before it are stored
                        refused = storage_error(exc, step.sql)
                        return outcomes + [refused] * (len(args) - len(outcomes))
                    outcomes.append(storage_error(exc, step.sql))
            return outcomes

        return await self._on_driver(step, send)

    async def _send_reads(self, step: DriverStatement, asked: list[Read]) -> list[list[Any]]:
        distinct = dict(asked)  # one execution per tag value

        async def send(lent: LentDriver) -> dict[Hashable, list[Any]]:
            rows = await lent.driver.fetchmany(step.sql, list(distinct.values()))
            found: dict[Hashable, list[Any]] = {tag: [] for tag in distinct}
            for row in rows:
                found[row[0]].append(row)
            return found

        try:
            found = await self._on_driver(step, send)
        except OperationalError:  # a connection that broke under it: once more, fresh
            found = await self._on_driver(step, send)
        return [found[tag] for tag, _ in asked]

    async def _on_driver(self, step: DriverStatement, send: Any) -> Any:
        async with pooled_driver(self.engine) as lent:
            lent.sql = step.sql
            return await send(lent)


class LentDriver:
    """A pooled connection's asyncpg driver, lent for one step; ``sql`` is the statement
    being sent, named by the error should it fail."""

    __slots__ = ("driver", "dropped", "sql")

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.sql = ""
        self.dropped = False

    def drop(self) -> None:
        """The connection is not to go back to the pool (the server ended it)."""
        self.dropped = True


@contextlib.asynccontextmanager
async def pooled_driver(engine: AsyncEngine) -> AsyncIterator[LentDriver]:
    """The driver of a connection from ``engine``'s pool (asyncpg). A driver error is
    raised as SQLAlchemy's; a connection that failed under its step (or whose step was cut
    off mid-way, maybe inside a transaction nobody will commit, or that the step dropped)
    never goes back to the pool."""
    async with engine.connect() as conn:
        lent = LentDriver((await conn.get_raw_connection()).driver_connection)
        try:
            yield lent
        except asyncpg.exceptions.PostgresError as exc:  # the server's refusal
            if _connection_lost(exc, lent.driver):  # or its end: it shut the connection
                await conn.invalidate()
            raise storage_error(exc, lent.sql) from exc
        except (asyncpg.exceptions.InterfaceError,  # its connection closed under it
                asyncpg.exceptions.InternalClientError) as exc:
            await conn.invalidate()
            raise storage_error(exc, lent.sql) from exc
        except BaseException:
            await conn.invalidate()
            raise
        if lent.dropped:
            await conn.invalidate()


def _connection_lost(exc: asyncpg.exceptions.PostgresError, driver: Any) -> bool:
    """The error ended the connection (a server shut down or restarting, a backend
    terminated: SQLSTATE classes 08 and 57), not just this statement."""
    return driver.is_closed() or str(exc.sqlstate or "")[:2] in ("08", "57")


_BATCHES: weakref.WeakKeyDictionary[Any, _EngineBatches] = weakref.WeakKeyDictionary()


def _batches(engine: AsyncEngine) -> _EngineBatches:
    found = _BATCHES.get(engine.sync_engine)
    if found is None or found.loop is not asyncio.get_running_loop():
        found = _BATCHES[engine.sync_engine] = _EngineBatches(engine)
    return found


async def batched_write(engine: AsyncEngine, statement: Executable, params: dict[str, Any]
                        ) -> Sequence[Any] | None:
    """Run ``statement`` (``batchable``) with ``params`` on ``engine`` (asyncpg), committed,
    in a batch with the other callers' executions of it; its RETURNING row, or None."""
    return await _batches(engine).write(statement, params)


async def batched_rows(engine: AsyncEngine, statement: Executable, tag: str,
                       params: dict[str, Any]) -> list[Sequence[Any]]:
    """The rows of a read-only ``statement`` with ``params`` (asyncpg), read in a batch with
    other callers' reads of it. Its first column must give back the parameter ``tag``: the
    rows of one batch are sorted out by it."""
    return await _batches(engine).rows(statement, tag, params)
