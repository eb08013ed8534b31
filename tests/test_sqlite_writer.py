"""Another process holding SQLite's write lock never stalls the engine's event loop: the
call path's writes wait on their own thread, for a bounded time, then fail to a human."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch import hotpath
from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade
from dispatch.importer import import_registry_csv
from dispatch.models import Elder, WorkOrder
from dispatch.orders import ServiceType, create_order
from tests.storage import sqlite_url

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db_file(tmp_path: Path) -> Iterator[Path]:
    url = sqlite_url(tmp_path)
    upgrade(url)
    yield Path(url.removeprefix("sqlite:///"))


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as a bulk import or a backup would be, holding the lock."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def _elder(sessions: async_sessionmaker[AsyncSession], name: str) -> int:
    async with sessions() as session:
        elder = Elder(name=name, created_at=AT)
        session.add(elder)
        await session.commit()
        return elder.id


async def _order(sessions, elder_id: int) -> WorkOrder:
    async with sessions() as session:
        return await create_order(session, elder_id=elder_id, service=ServiceType.MEAL,
                                  source="phone", call_uniqueid="1.1", requested_by="elder",
                                  at=AT)


async def test_a_write_waiting_for_the_lock_leaves_the_loop_free(db_file: Path) -> None:
    engine = make_async_engine(f"sqlite:///{db_file}", pool_size=2)
    try:
        sessions = async_sessionmaker_for(engine)
        elder_id = await _elder(sessions, "张秀英")
        holder = _hold_write_lock(db_file)
        writing = asyncio.ensure_future(_order(sessions, elder_id))
        for _ in range(3):
            await asyncio.sleep(0)  # the write is under way on its thread
        # Only code on this loop releases the lock: a write that blocked the loop while
        # waiting would time out before this line ran.
        await asyncio.to_thread(holder.execute, "COMMIT")
        order = await asyncio.wait_for(writing, 60)
        holder.close()
        assert order.order_no
        async with sessions() as session:
            assert (await session.execute(select(func.count()).select_from(WorkOrder))
                    ).scalar_one() == 1
    finally:
        await engine.dispose()


async def test_a_lock_held_past_the_bound_fails_the_write(
    db_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hotpath, "SQLITE_WRITE_WAIT_S", 0.5)
    engine = make_async_engine(f"sqlite:///{db_file}", pool_size=2)
    try:
        sessions = async_sessionmaker_for(engine)
        elder_id = await _elder(sessions, "李建国")
        holder = _hold_write_lock(db_file)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.ensure_future(tick())
        try:
            with pytest.raises(OperationalError, match="locked"):
                await asyncio.wait_for(_order(sessions, elder_id), 60)
        finally:
            ticking.cancel()
            holder.execute("ROLLBACK")
            holder.close()
        assert ticks > 3  # the loop ran other work while the write waited
    finally:
        await engine.dispose()


def _registry_csv(path: Path, rows: int) -> Path:
    header = ("name,gender,birth_date,id_card,phones,handset,family,address,province_code,"
              "city_code,county_code,county_name,street_code,community_code,latitude,longitude,"
              "language,subsidy,health_notes")
    lines = [header] + [
        f"老人{i},女,1941-03-08,,1380{i:07d},,王芳:女儿:1390{i:07d},兰州市城关区{i}号,620000,"
        f"620100,620102,城关区,,,36.06,103.83,zh,低保,高血压" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_a_bulk_import_beside_the_engine_lets_every_order_in(
    db_file: Path, tmp_path: Path
) -> None:
    engine = make_async_engine(f"sqlite:///{db_file}", pool_size=2)
    try:
        sessions = async_sessionmaker_for(engine)
        elder_id = await _elder(sessions, "王秀兰")
        csv_path = _registry_csv(tmp_path / "registry.csv", 3000)
        importing = asyncio.ensure_future(asyncio.to_thread(
            import_registry_csv, f"sqlite:///{db_file}", csv_path))
        orders = 0
        while not importing.done():  # orders keep coming while the import runs
            await _order(sessions, elder_id)  # a failure (database locked) fails the test
            orders += 1
        report = await importing
        assert report.created == 3000 and not report.errors and report.fatal is None
        assert orders > 1
    finally:
        await engine.dispose()
