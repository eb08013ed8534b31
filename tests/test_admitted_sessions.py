"""The engine's sessions on PostgreSQL under a burst larger than the pool: every session is
admitted in its turn (none fails on the pool's timeout), no more than the slots are open
at once, a caller's urgent session goes before the background ones already waiting, and a
session opened inside another of the same task does not wait on itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.db import async_sessionmaker_for, make_async_engine
from ivr.admitted_sessions import AdmittedSessions

SLOTS = 2


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(pg_url, pool_size=SLOTS)  # SLOTS + SLOTS overflow
    try:
        yield engine
    finally:
        await engine.dispose()


async def _queued(sessions: AdmittedSessions, count: int) -> None:
    async with asyncio.timeout(30):
        while sessions.gate.waiting < count:
            await asyncio.sleep(0)


async def test_a_burst_waits_its_turn_with_the_caller_first(pool: AsyncEngine) -> None:
    sessions = AdmittedSessions(async_sessionmaker_for(pool), SLOTS)
    admitted: list[str] = []  # the order slots were given in (queries may end in any order)
    finished: list[str] = []
    most_open = 0
    go_on = asyncio.Event()  # the first ones inside hold their slots until the caller waits

    async def query(name: str, urgent: bool = False) -> None:
        nonlocal most_open
        async with sessions(urgent) as session:
            admitted.append(name)
            await session.execute(text("SELECT pg_sleep(0.01)"))
            most_open = max(most_open, pool.pool.checkedout())  # type: ignore[attr-defined]
            await go_on.wait()
        finished.append(name)

    background = [asyncio.create_task(query(f"bg{i}")) for i in range(40)]
    await _queued(sessions, 40 - SLOTS)
    caller = asyncio.create_task(query("caller", urgent=True))
    await _queued(sessions, 40 - SLOTS + 1)
    go_on.set()
    await asyncio.gather(*background, caller)
    assert len(finished) == 41 and most_open <= SLOTS
    assert admitted.index("caller") == SLOTS  # right after the ones already inside


async def test_a_session_inside_a_session_does_not_wait_on_itself(pool: AsyncEngine) -> None:
    sessions = AdmittedSessions(async_sessionmaker_for(pool), SLOTS)

    async def outer_and_inner() -> int:
        async with sessions() as outer:
            await outer.execute(text("SELECT 1"))
            async with sessions() as inner:  # every slot is held by a task like this one
                return int(await inner.scalar(text("SELECT 2")) or 0)

    async with asyncio.timeout(30):
        results = await asyncio.gather(*(outer_and_inner() for _ in range(SLOTS * 3)))
    assert results == [2] * (SLOTS * 3) and sessions.gate.waiting == 0


async def test_an_untouched_session_is_lent_again_and_a_used_one_closed(pool: AsyncEngine
                                                                       ) -> None:
    sessions = AdmittedSessions(async_sessionmaker_for(pool), SLOTS)
    async with sessions() as untouched:
        pass
    async with sessions() as again:
        assert again is untouched
        await again.execute(text("SELECT 1"))  # begins a transaction, left open
    async with sessions(urgent=True) as fresh:
        assert fresh is not untouched and not fresh.in_transaction()
    assert pool.pool.checkedin() >= 1 and pool.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_session_that_failed_inside_is_closed_not_lent(pool: AsyncEngine) -> None:
    sessions = AdmittedSessions(async_sessionmaker_for(pool), SLOTS)
    with pytest.raises(RuntimeError):
        async with sessions() as failed:
            await failed.execute(text("SELECT 1"))
            raise RuntimeError("the step failed mid-transaction")
    async with sessions() as next_one:
        assert next_one is not failed
    assert pool.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_batched_call_path_step_takes_no_slot(pg_url: str) -> None:
    """Every slot held and a background session waiting: callers' registry reads, batched
    through the driver, still go through at once, and take no slot from the one waiting."""
    from dispatch.db import upgrade
    from dispatch.registry import CallerStatus, identify_number

    upgrade(pg_url)
    engine = make_async_engine(pg_url, pool_size=SLOTS)
    sessions = AdmittedSessions(async_sessionmaker_for(engine), SLOTS)
    release = asyncio.Event()

    async def background() -> None:
        async with sessions() as session:
            await session.execute(text("SELECT 1"))
            await release.wait()

    async def caller(number: str) -> CallerStatus:
        async with sessions.unadmitted() as session:
            return (await identify_number(session, number)).status

    held = [asyncio.create_task(background()) for _ in range(SLOTS + 1)]
    try:
        await _queued(sessions, 1)
        async with asyncio.timeout(10):
            found = await asyncio.gather(*(caller(f"+8613800{n:06d}") for n in range(20)))
        assert found == [CallerStatus.UNKNOWN] * 20
        assert sessions.gate.waiting == 1
    finally:
        release.set()
        await asyncio.gather(*held)
        await engine.dispose()
