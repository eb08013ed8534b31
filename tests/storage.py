"""Shared storage fixtures: each test gets a clean database on SQLite and on PostgreSQL.

``db_url`` is parametrized over ``sqlite`` (a temporary file) and ``postgresql`` (the
database named by HOTLINE_TEST_DATABASE_URL, with a schema of its own per test, set via
``search_path`` in the URL and dropped afterwards, so tests may run in parallel on one
database). Without that variable the PostgreSQL variant is skipped; if it is set but the
server is unreachable, the test fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from dispatch.db import (
    async_sessionmaker_for,
    make_async_engine,
    make_sync_engine,
    upgrade,
    with_schema,
)

PG_ENV = "HOTLINE_TEST_DATABASE_URL"
REDIS_ENV = "HOTLINE_TEST_REDIS_URL"


def rows(db_url: str, statement: Any) -> list[Any]:
    """Rows of ``statement`` read now, through a database engine of its own (what others
    have committed)."""
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(statement).all())
    finally:
        engine.dispose()


@contextmanager
def table_locked(db_url: str, table: str) -> Iterator[None]:
    """No row can be written to ``table`` (PostgreSQL; reads go on) until the block ends:
    another session holds it."""
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE'))
            yield
            conn.rollback()
    finally:
        engine.dispose()


def _pg_admin(base_url: str, statement: str) -> None:
    engine = make_sync_engine(base_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def sqlite_url(folder: Path) -> str:
    """URL of a fresh SQLite file in ``folder``."""
    return f"sqlite:///{folder / 'hotline-test.sqlite3'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL bound to a fresh schema; skipped without HOTLINE_TEST_DATABASE_URL."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL variant not run")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    _pg_admin(base, f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(base, schema)
    finally:
        _pg_admin(base, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (no tables) on each backend."""
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return request.getfixturevalue("pg_url")


@pytest.fixture
def migrated_db_url(db_url: str) -> str:
    """``db_url`` migrated to the latest schema."""
    upgrade(db_url)
    return db_url


@pytest.fixture
async def db_engine(migrated_db_url: str) -> AsyncIterator[AsyncEngine]:
    """An async engine on the migrated database, disposed after the test."""
    engine = make_async_engine(migrated_db_url, pool_size=5)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def db_session(db_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """One async session (expire_on_commit=False) on the migrated database."""
    async with async_sessionmaker_for(db_engine)() as session:
        yield session


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    """A client of the Redis server named by HOTLINE_TEST_REDIS_URL (keys: a prefix per test)."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set")
    client = aioredis.Redis.from_url(url)
    yield client
    await client.aclose()
