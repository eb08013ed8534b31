"""Database URLs, engines and migrations.

Users configure one URL, ``sqlite:///path`` or ``postgresql://user@host/db``; the driver
variants are derived from it: sqlite / sqlite+aiosqlite and postgresql+psycopg /
postgresql+asyncpg. A libpq ``options`` query parameter (for example
``?options=-csearch_path%3Dtenant``) works on both PostgreSQL drivers: asyncpg gets it as
``server_settings``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Dialect, Engine, Executable, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
CONNECT_TIMEOUT_S = 10  # PostgreSQL connection attempts give up after this
ASYNC_COMMAND_TIMEOUT_S = 10.0  # hot-path statements (lookups, orders, call records)
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def _parse(url: str) -> tuple[URL, str]:
    """Parse ``url`` and name its backend ("sqlite" or "postgresql")."""
    try:
        parsed = make_url(url)
    except Exception:  # sqlalchemy raises ArgumentError, ValueError...
        # the URL itself is not repeated: it may hold a password
        raise ValueError("not a database URL (sqlite:///path or postgresql://...)") from None
    backend = parsed.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")
    return parsed, backend


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The URL with the synchronous driver: ``sqlite`` or ``postgresql+psycopg``."""
    parsed, backend = _parse(url)
    driver = "sqlite" if backend == "sqlite" else "postgresql+psycopg"
    return _render(parsed.set(drivername=driver))


def async_url(url: str) -> str:
    """The URL with the asyncio driver: ``sqlite+aiosqlite`` or ``postgresql+asyncpg``."""
    parsed, backend = _parse(url)
    driver = "sqlite+aiosqlite" if backend == "sqlite" else "postgresql+asyncpg"
    return _render(parsed.set(drivername=driver))


def with_schema(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections use ``schema`` first in their search_path."""
    parsed, backend = _parse(url)
    if backend != "postgresql":
        raise ValueError("schemas exist only on PostgreSQL")
    if not _SCHEMA_RE.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    options = parsed.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    merged = f"{options} -csearch_path={schema}".strip()
    return _render(parsed.update_query_dict({"options": merged}))


def server_settings(options: str) -> dict[str, str]:
    """Translate libpq ``options`` (``-c name=value`` ...) into asyncpg server settings."""
    settings: dict[str, str] = {}
    words = shlex.split(options)
    i = 0
    while i < len(words):
        word = words[i]
        if word == "-c" and i + 1 < len(words):
            i += 1
            word = words[i]
        elif word.startswith("-c") or word.startswith("--"):
            word = word[2:]
        else:
            raise ValueError(f"unsupported PostgreSQL option {word!r} in {options!r}")
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise ValueError(f"malformed PostgreSQL option {word!r} in {options!r}")
        settings[name.replace("-", "_")] = value
        i += 1
    return settings


def _sqlite_file(parsed: URL) -> Path | None:
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _ensure_sqlite_dir(parsed: URL) -> None:
    """Create the database file's folder, and the file itself with mode 0600: it holds the
    registry's personal data. SQLite gives its -wal and -shm files the file's mode."""
    path = _sqlite_file(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never open (and close) an existing database file here. Closing any
        # descriptor of a file drops every POSIX lock this process holds on it, SQLite's
        # included, and another connection's WAL locking then fails ("disk I/O error").
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


SQLITE_PRAGMA_WAIT_S = 30.0  # as busy_timeout: the longest a new connection waits for a lock


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            _execute_when_unlocked(cursor, pragma)
    finally:
        cursor.close()


def _execute_when_unlocked(cursor: Any, statement: str) -> None:
    """Run ``statement``, tried again while another connection holds the lock it needs.
    Switching a new file to WAL can answer "database is locked" at once, busy_timeout or
    not, while another process's first connection is switching it or migrating it."""
    deadline = time.monotonic() + SQLITE_PRAGMA_WAIT_S
    while True:
        try:
            cursor.execute(statement)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_explicit_transactions(dbapi_connection: Any, record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver no longer opens transactions itself
    _set_sqlite_pragmas(dbapi_connection, record)


_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE"})


def _sqlite_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode not in _BEGIN_MODES:
        raise ValueError(f"sqlite_begin must be one of {sorted(_BEGIN_MODES)}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_sync_engine(url: str) -> Engine:
    """A synchronous engine for batch jobs (generator, importer, migrations).

    On SQLite it emits BEGIN itself, so transactions, savepoints and DDL behave as on
    PostgreSQL (pysqlite's own transaction handling breaks SAVEPOINT). A job that reads
    then writes asks for the write lock up front with the execution option
    ``sqlite_begin="IMMEDIATE"``, so a concurrent writer makes it wait, not fail.
    """
    parsed, backend = _parse(url)
    if backend == "sqlite":
        _ensure_sqlite_dir(parsed)
        engine = create_engine(sync_url(url))
        event.listen(engine, "connect", _sqlite_explicit_transactions)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args = {} if "connect_timeout" in parsed.query else {
        "connect_timeout": CONNECT_TIMEOUT_S
    }
    return create_engine(sync_url(url), pool_pre_ping=True, connect_args=connect_args)


def make_async_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    """The engine of the hot path (caller ID, orders, call records)."""
    parsed, backend = _parse(url)
    target = make_url(async_url(url))
    if backend == "sqlite":
        _ensure_sqlite_dir(parsed)
        pool_args: dict[str, Any] = {}
        if _sqlite_file(parsed) is not None:
            pool_args = {"pool_size": pool_size, "max_overflow": pool_size}
        engine = create_async_engine(target, **pool_args)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        return engine
    defaults = {"timeout": CONNECT_TIMEOUT_S, "command_timeout": ASYNC_COMMAND_TIMEOUT_S}
    connect_args: dict[str, Any] = {k: v for k, v in defaults.items() if k not in target.query}
    options = target.query.get("options")
    if options:
        joined = " ".join(options) if isinstance(options, tuple) else options
        connect_args["server_settings"] = server_settings(joined)
        target = target.difference_update_query(["options"])
    # No pool_pre_ping: with asyncpg it costs three round trips per checkout. A connection
    # the server dropped fails one statement, and SQLAlchemy then invalidates the pool.
    return create_async_engine(
        target,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args=connect_args,
    )


_readers = threading.local()


def _reader_cache() -> weakref.WeakKeyDictionary[Engine, sqlite3.Connection]:
    cache = getattr(_readers, "cache", None)
    if cache is None:
        cache = _readers.cache = weakref.WeakKeyDictionary()
    return cache


def sqlite_reader(engine: AsyncEngine) -> sqlite3.Connection | None:
    """A query-only sqlite3 connection to the engine's file, for this thread (else None).

    Point lookups on SQLite take microseconds; through aiosqlite every call is a hand-off
    to its worker thread and back, which costs far more than the query. Hot-path reads
    use this connection directly; in WAL mode it sees every committed write.
    """
    cache = _reader_cache()
    reader = cache.get(engine.sync_engine)
    if reader is None:
        path = _sqlite_file(engine.url) if engine.dialect.name == "sqlite" else None
        if path is None:
            return None
        reader = sqlite3.connect(path)
        reader.execute("PRAGMA query_only=ON")
        reader.execute("PRAGMA busy_timeout=5000")
        cache[engine.sync_engine] = reader
    return reader


def _drop_sqlite_reader(engine: AsyncEngine) -> None:
    reader = _reader_cache().pop(engine.sync_engine, None)
    if reader is not None:
        reader.close()


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement compiled once for a dialect whose driver takes positional parameters,
    with SQLAlchemy's type processing of each parameter (enums, UTC timestamps, JSON)."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]
    processors: dict[str, Any]

    def args(self, params: dict[str, Any]) -> list[Any]:
        out = []
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]
            processor = self.processors.get(name)
            out.append(processor(value) if processor is not None and value is not None
                       else value)
        return out


_COMPILED: dict[tuple[Executable, str, str], DriverStatement] = {}


def compiled(statement: Executable, dialect: Dialect) -> DriverStatement:
    """``statement`` (a module constant) compiled for ``dialect``, cached."""
    key = (statement, dialect.name, dialect.driver)
    found = _COMPILED.get(key)
    if found is None:
        result = statement.compile(dialect=dialect)
        found = _COMPILED[key] = DriverStatement(
            result.string,
            tuple(result.positiontup or ()),
            {name: bind.effective_value for name, bind in result.binds.items()},
            _bind_processors(result.bind_names, dialect),
        )
    return found


def _bind_processors(bind_names: Mapping[Any, str], dialect: Dialect) -> dict[str, Any]:
    """Each parameter's conversion for ``dialect`` by its name in the SQL (None: passed as
    is), through the public ``TypeEngine.dialect_impl(...).bind_processor(...)``, as the
    compiler itself derives it."""
    processors = {}
    for bind, name in bind_names.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
    return processors


async def fetch_committed_row(
    engine: AsyncEngine, statement: Executable, params: dict[str, Any]
) -> Sequence[Any] | None:
    """The first row of :func:`fetch_committed_rows`, or None."""
    rows = await fetch_committed_rows(engine, statement, params)
    return rows[0] if rows else None


async def fetch_committed_rows(
    engine: AsyncEngine, statement: Executable, params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of a read-only statement built once at import (a module constant)
    that selects a few rows at most (use LIMIT).

    Reads committed data outside any session, straight through the driver with SQL
    compiled once: SQLite through :func:`sqlite_reader`, PostgreSQL through a pooled
    asyncpg connection in one round trip (no BEGIN/ROLLBACK). Result values are raw
    driver values (no SQLAlchemy type processing). If the direct route fails, the
    connection is discarded and the statement runs once more through SQLAlchemy, so
    errors surface as SQLAlchemyError and a server restart costs no failed call.
    """
    driver_statement = compiled(statement, engine.dialect)
    args = driver_statement.args(params)
    reader = sqlite_reader(engine)
    if reader is not None:
        try:
            return reader.execute(driver_statement.sql, args).fetchall()  # ends the read
        except sqlite3.Error:
            _drop_sqlite_reader(engine)
    elif engine.dialect.driver == "asyncpg":
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            try:
                return await driver.fetch(driver_statement.sql, *args)
            except TimeoutError as exc:
                await conn.invalidate()
                raise StatementTimeoutError(f"statement timed out: {exc}") from exc
            except Exception:
                await conn.invalidate()
    async with engine.connect() as conn:
        return (await conn.execute(statement, params)).all()


class StatementTimeoutError(SQLAlchemyError):
    """A hot-path statement exceeded the command timeout."""


def async_sessionmaker_for(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    """An Alembic configuration built in code: no alembic.ini needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (creating a SQLite file's folder)."""
    engine = make_sync_engine(url)
    try:
        with write_transaction(engine) as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


@contextmanager
def write_transaction(engine: Engine, lock_key: int = 12349) -> Iterator[Connection]:
    """A transaction that holds the database's write lock from its start.

    SQLite: BEGIN IMMEDIATE. PostgreSQL: a transaction-scoped advisory lock, so that
    two processes running the same batch job (migration, generator) take turns.
    """
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
            yield connection


def insert_ignoring(table: Any, dialect: Dialect, unique: Sequence[str]) -> Any:
    """An INSERT into ``table`` that skips rows clashing with the unique key ``unique``
    (ON CONFLICT DO NOTHING on PostgreSQL and SQLite): two engines planning the same rows
    at once write each one once."""
    if dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=list(unique))
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(unique))
