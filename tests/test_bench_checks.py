"""The benchmarks' self-checks (tests/bench/checks.py) on real storage: a run that lost an
order, logged an error or left an exception unretrieved fails; a clean run passes."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.calls import record_call
from dispatch.db import async_sessionmaker_for
from dispatch.models import Elder
from dispatch.orders import ServiceType, create_order
from tests.bench.checks import Bench, Stored

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CALLS = ["1700000000.1", "1700000000.2", "1700000000.3"]


async def _calls_with_orders(engine: AsyncEngine, uniqueids: list[str]) -> None:
    """Each call as the inbound flow leaves it: its order and its call record."""
    async with async_sessionmaker_for(engine)() as session:
        elder = Elder(name="张秀英", created_at=AT)
        session.add(elder)
        await session.commit()
        for uniqueid in uniqueids:
            order = await create_order(session, elder_id=elder.id, service=ServiceType.MEAL,
                                       source="phone", call_uniqueid=uniqueid,
                                       requested_by="elder", at=AT)
            await record_call(session, uniqueid=uniqueid, linkedid=uniqueid, channel="PJSIP/x",
                              direction="inbound", caller_number="+8613800138000",
                              identity_status="elder", elder_id=elder.id, started_at=AT,
                              ended_at=AT, disposition="order", reason="meal",
                              order_id=order.id)
            await session.commit()


async def _check_calls(bench: Bench, url: str) -> None:
    async with Stored(url) as stored:
        orders = await stored.orders_of_calls(CALLS)
        bench.missing("orders in the database", CALLS, orders)
        bench.once_each("orders in the database", orders)
        bench.missing("call records pointing to their order", CALLS,
                      await stored.call_records(CALLS, with_their_order=True))


async def test_a_clean_run_passes(db_engine: AsyncEngine, migrated_db_url: str) -> None:
    await _calls_with_orders(db_engine, CALLS)
    out = io.StringIO()
    with Bench("calls", out) as bench:
        await _check_calls(bench, migrated_db_url)
        bench.report("inbound calls", {"calls": len(CALLS)})
    assert bench.passed, bench.failures
    assert "== inbound calls" in out.getvalue()
    assert "-- calls: checks passed" in out.getvalue()


async def test_an_order_missing_from_the_database_fails_the_run(
        db_engine: AsyncEngine, migrated_db_url: str) -> None:
    await _calls_with_orders(db_engine, CALLS[:2])
    out = io.StringIO()
    with Bench("calls", out) as bench:
        await _check_calls(bench, migrated_db_url)
        bench.report("inbound calls", {"calls": len(CALLS)})
    assert bench.failures == [
        f"orders in the database: 1 of 3 missing, e.g. ['{CALLS[2]}']",
        f"call records pointing to their order: 1 of 3 missing, e.g. ['{CALLS[2]}']",
    ]
    assert "== INVALID: inbound calls" in out.getvalue()


async def test_an_error_record_fails_the_run(db_engine: AsyncEngine,
                                             migrated_db_url: str) -> None:
    await _calls_with_orders(db_engine, CALLS)
    with Bench("calls", io.StringIO()) as bench:
        await _check_calls(bench, migrated_db_url)
        logging.getLogger("ivr.escalation").error("escalation step of order 7 not stored")
    assert bench.failures == [
        "1 log records at ERROR or above in the benchmark's process, first: "
        "['ERROR ivr.escalation: escalation step of order 7 not stored']"]


def test_a_task_exception_never_retrieved_fails_the_run() -> None:
    async def escalation() -> None:
        raise RuntimeError("database disk image is malformed")

    async def run() -> None:
        task = asyncio.get_running_loop().create_task(escalation())
        await asyncio.wait([task])  # done, its exception never asked for

    with Bench("emergency", io.StringIO()) as bench:
        asyncio.run(run())
    assert len(bench.failures) == 1
    assert "ERROR asyncio: Task exception was never retrieved" in bench.failures[0]


def test_an_error_line_in_the_simulator_log_fails_the_run(tmp_path: Path) -> None:
    log = tmp_path / "sim.log"
    log.write_text("2026-03-01 09:00:00,000 sim WARNING sim.pbx: slow originate\n"
                   "2026-03-01 09:00:01,000 sim ERROR sim.control: control request failed\n")
    with Bench("dispatch", io.StringIO()) as bench:
        bench.log_file(log)
    assert bench.failures == [
        f"1 error lines in {log}, first: "
        "['2026-03-01 09:00:01,000 sim ERROR sim.control: control request failed']"]


async def test_tasks_left_running_fail_the_run_and_are_stopped() -> None:
    leftover = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
    with Bench("emergency", io.StringIO()) as bench:
        await bench.no_tasks_left("engine")
    assert leftover.cancelled()
    assert len(bench.failures) == 1 and "1 tasks still running" in bench.failures[0]


def test_a_benchmark_that_raises_fails_and_keeps_its_run_directory() -> None:
    with Bench("speech", io.StringIO()) as bench:
        folder = bench.run_dir("model")
        raise FileNotFoundError("no model")
    assert bench.failures == ["stopped by FileNotFoundError: no model"]
    assert folder.is_dir()
    folder.rmdir()


def test_a_passing_benchmark_removes_its_run_directories() -> None:
    with Bench("speech", io.StringIO()) as bench:
        folder = bench.run_dir("model")
        (folder / "sim.log").write_text("")
        bench.expect("utterances recognised", 24, 24)
    assert bench.passed and not folder.exists()


@pytest.mark.parametrize(("expected", "found", "passed"), [(3, 3, True), (3, 2, False),
                                                            (3, 4, False)])
def test_expect_wants_the_exact_count(expected: int, found: int, passed: bool) -> None:
    with Bench("dispatch", io.StringIO()) as bench:
        bench.expect("orders accepted", expected, found)
    assert bench.passed is passed
