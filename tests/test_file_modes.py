"""Files holding personal data are readable by their owner only (mode 0600), whatever the
umask: the embedded SQLite database with its WAL, and the embedded Redis dump."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from dispatch.db import make_async_engine, make_sync_engine
from ivr.config import RedisSettings
from ivr.redis_link import open_redis


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The usual umask (0022), under which files are created readable by everyone."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_file_and_its_wal_are_private(tmp_path: Path, permissive_umask: None
                                                 ) -> None:
    path = tmp_path / "var" / "hotline.sqlite3"
    engine = make_sync_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _mode(path) == 0o600
        assert _mode(path.with_name(path.name + "-wal")) == 0o600
    finally:
        engine.dispose()


async def test_the_async_engine_creates_the_file_private(tmp_path: Path,
                                                         permissive_umask: None) -> None:
    path = tmp_path / "hotline.sqlite3"
    engine = make_async_engine(f"sqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert _mode(path) == 0o600
    finally:
        await engine.dispose()


async def test_the_embedded_redis_dump_is_private(tmp_path: Path, permissive_umask: None
                                                  ) -> None:
    dump = tmp_path / "redis.db"
    link = open_redis(RedisSettings(embedded_path=dump))
    try:
        await link.client.set("hotline:test", "13800000001")
        await link.client.save()
        assert dump.exists() and _mode(dump) == 0o600
    finally:
        await link.close()
    assert os.umask(0o022) == 0o022  # the process's umask is left as it was
