"""Inbound calls per second and added latency per AGI command at 500 concurrent calls.

Three servers answer the same 12349 call from the same simulator, one after the other:
the engine (lookup, order committed, Redis live state), a bare FastAGI server sending the
engine's exact command sequence with no work behind it (the protocol ceiling), and a classic
pyst2 AGI script started as one process per call.

Every call driven (warm-up included) must end with its order announced; through the engine
each must also leave its call record pointing to its order, exactly one order, and its
``order_created`` event in Redis; through the classic script, its order. Each server gets a
database and simulator log of its own.

Beside the throughput, each server's CPU time per measured call: this process's CPU time
(the engine with its database threads, or the bare server, and with either the benchmark's
own driver of the simulator; the simulator, the database server and Redis run elsewhere),
and the share of it spent in the kernel, so the engine's own cost per call is set against
the bare protocol's even where the simulator is what limits the calls per second.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from dispatch.stats import percentile
from ivr.config import load_settings
from ivr.demo.simproc import SimulatorProcess
from ivr.engine import Engine, tune_garbage_collector
from tests.bench.bare_fastagi import BareFastAgi
from tests.bench.checks import DRAIN_S, Bench, Stored, stream_events

WARMUP = 50
FAST = 1_000_000.0  # simulated time: prompts and pauses take no real time
CPU_PER_CALL = ("CPU ms per call (the server process: engine or bare, with the benchmark's "
                "driver, the same for both; not the simulator, the database or Redis)")
KERNEL_PER_CALL = "of which in the kernel (system time: sockets), ms per call"
# 500 concurrent Python processes (about 60 MB each) would exhaust this machine's memory; the
# classic script is measured at the concurrency it can sustain, which only flatters it.
CLASSIC_CONCURRENCY = 40


def caller(number: str) -> dict[str, Any]:
    script = [{"press": "1", "delay": 0.0}, {"press": "1", "delay": 0.0}]
    return {"number": number, "name": "", "to": "12349", "context": "from-pstn",
            "script": script, "hangup_after": None}


async def _drive(sim: SimulatorProcess, numbers: list[str], calls: int, concurrency: int
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Figures of ``calls`` calls, ``concurrency`` at a time, and each call's result."""
    slots = asyncio.Semaphore(concurrency)
    results: list[dict[str, Any]] = []

    async def one(i: int) -> None:
        async with slots:
            results.append(await sim.call(caller(numbers[i % len(numbers)])))

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    elapsed = time.perf_counter() - start
    latencies = [
        float(command[2])
        for result in results for session in result.get("agi", [])
        for command in session.get("commands", [])
    ]
    return {"calls": calls, "completed_with_order": len(_done(results)), "seconds": elapsed,
            "calls_per_s": calls / elapsed, "cmd_p50_ms": percentile(latencies, 50),
            "cmd_p99_ms": percentile(latencies, 99), "commands": len(latencies)}, results


def _done(results: list[dict[str, Any]]) -> list[str]:
    """uniqueids of the calls that ended with their order announced."""
    return [r["uniqueid"] for r in results
            if r.get("variables", {}).get("HOTLINE_ROUTE") == "done"]


async def _warm_and_measure(sim: SimulatorProcess, numbers: list[str], calls: int,
                            concurrency: int, bench: Bench, label: str
                            ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The measured calls after a warm-up; every call driven must have ended with its order."""
    _, warmup = await _drive(sim, numbers, WARMUP, WARMUP)
    # this process's CPU time: the server under test and the benchmark's driver
    cpu, kernel = time.process_time(), os.times().system
    figures, results = await _drive(sim, numbers, calls, concurrency)
    figures[CPU_PER_CALL] = (time.process_time() - cpu) * 1000 / max(1, calls)
    figures[KERNEL_PER_CALL] = (os.times().system - kernel) * 1000 / max(1, calls)
    every = warmup + results
    bench.expect(f"{label}: calls ended with their order announced", len(every),
                 len(_done(every)))
    return figures, every


def _classic_dir(db_url: str, run: Path) -> Path:
    folder = run / "agi-bin"
    folder.mkdir()
    script = folder / "inbound"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"sys.path.insert(0, {str(Path.cwd())!r})\n"
        f"os.environ['HOTLINE_DATABASE__URL'] = {db_url!r}\n"
        "from tests.bench.classic_inbound import main\n"
        "sys.exit(main())\n"
    )
    script.chmod(0o755)
    return folder


async def _engine_figures(bench: Bench, label: str, db_url: str, redis_url: str, run: Path,
                          numbers: list[str], calls: int, concurrency: int
                          ) -> tuple[dict[str, Any], list[str]]:
    """The engine's figures, checked; also the AGI commands of one call."""
    settings = load_settings(
        None, database={"url": db_url, "pool_size": 20},
        redis={"url": redis_url, "embedded_path": str(run / "redis.db"),
               "key_prefix": f"bench{uuid.uuid4().hex[:8]}:"},
        agi={"port": 0}, ami={"enabled": False}, clock={"speed": 1.0},
        spool={"dir": str(run / "spool")}, alarms={"spool_dir": str(run / "alarms")},
    )
    engine = Engine(settings)
    await engine.start(migrate=False, connect_ami=False)
    tune_garbage_collector()  # as the engine process does
    try:
        sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{engine.agi_port}",
                                           speed=FAST, log_path=bench.log_file(run / "sim.log"))
        try:
            figures, results = await _warm_and_measure(sim, numbers, calls, concurrency, bench,
                                                       label)
        finally:
            await sim.stop()
        assert engine.context is not None
        live = engine.context.live
        announced = {event["uniqueid"] for _, event in
                     await stream_events(live._client, live.stream_key, "order_created")}
    finally:
        await engine.stop(grace_s=DRAIN_S)
        gc.unfreeze()  # this process runs server after server: let the stopped one be freed
    await bench.no_tasks_left(f"{label}: engine")
    uniqueids = [r["uniqueid"] for r in results]
    bench.missing(f"{label}: order_created events in Redis", uniqueids, announced)
    await _check_orders(bench, label, db_url, uniqueids, with_call_records=True)
    return figures, [c[0] for c in results[0]["agi"][0]["commands"]]


async def _check_orders(bench: Bench, label: str, db_url: str, uniqueids: list[str], *,
                        with_call_records: bool) -> None:
    """Each call has exactly one order in the database (and its call record pointing to it)."""
    async with Stored(db_url) as stored:
        orders = await stored.orders_of_calls(uniqueids)
        bench.missing(f"{label}: orders in the database", uniqueids, orders)
        bench.once_each(f"{label}: orders in the database", orders)
        if with_call_records:
            records = await stored.call_records(uniqueids, with_their_order=True)
            bench.missing(f"{label}: call records pointing to their order", uniqueids, records)


def _city(db_url: str) -> list[str]:
    """A fresh registry of 10,000 elders at ``db_url``, its statistics gathered (as a
    registry in service has them: else PostgreSQL's autovacuum gathers them at some moment
    of the measured calls); a sample of elders' numbers."""
    from sqlalchemy import text

    from dispatch.citygen import generate_city, sample_numbers
    from dispatch.db import make_sync_engine, upgrade

    upgrade(db_url)
    generate_city(db_url, elders=10_000, vendors=40, seed=7)
    if db_url.startswith("postgresql"):
        engine = make_sync_engine(db_url)
        try:
            with engine.begin() as conn:
                for name in ("elders", "elder_phones", "family_contacts"):
                    conn.execute(text(f"ANALYZE {name}"))
        finally:
            engine.dispose()
    return sample_numbers(db_url, 500, 7)["elders"]


def _postgres_schema_url(schema: str = "bench_calls") -> str | None:
    """A fresh schema of its own on the PostgreSQL server, if one is configured."""
    base = os.environ.get("HOTLINE_TEST_DATABASE_URL")
    if not base:
        return None
    from sqlalchemy import text

    from dispatch.db import make_sync_engine, with_schema

    admin = make_sync_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    return with_schema(base, schema)


def _sqlite_url(run: Path) -> str:
    return f"sqlite:///{run / 'hotline.sqlite3'}"  # absolute: the classic script runs elsewhere


async def _run(bench: Bench, calls: int, concurrency: int, classic_calls: int) -> None:
    run = bench.run_dir("engine-sqlite")
    db_url = _sqlite_url(run)
    numbers = _city(db_url)
    engine_figures, commands = await _engine_figures(bench, "engine on SQLite", db_url, "", run,
                                                     numbers, calls, concurrency)
    bench.report("inbound calls: engine on SQLite + embedded Redis", engine_figures)

    pg_url, redis_url = _postgres_schema_url(), os.environ.get("HOTLINE_TEST_REDIS_URL", "")
    if pg_url and redis_url:
        pg_numbers = _city(pg_url)
        engine_figures, _ = await _engine_figures(
            bench, "engine on PostgreSQL", pg_url, redis_url, bench.run_dir("engine-pg"),
            pg_numbers, calls, concurrency)
        bench.report("inbound calls: engine on PostgreSQL + Redis", engine_figures)

    bare = BareFastAgi(commands)
    port = await bare.start()
    tune_garbage_collector()  # the same for the protocol's baseline
    try:
        sim = await SimulatorProcess.start(
            agi_url=f"agi://127.0.0.1:{port}", speed=FAST,
            log_path=bench.log_file(bench.run_dir("bare") / "sim.log"))
        try:
            bare_figures, results = await _warm_and_measure(sim, numbers, calls, concurrency,
                                                            bench, "bare FastAGI")
        finally:
            await sim.stop()
    finally:
        await bare.close()
        gc.unfreeze()
    bench.expect("bare FastAGI: sessions served", len(results), bare.sessions)
    bench.report("inbound calls: bare FastAGI (protocol ceiling)", bare_figures)

    run = bench.run_dir("classic")
    classic_url = _sqlite_url(run)
    _city(classic_url)
    sim = await SimulatorProcess.start(agi_url=str(_classic_dir(classic_url, run)), speed=FAST,
                                       log_path=bench.log_file(run / "sim.log"),
                                       extra_args=["--agi-idle-timeout", "600"])
    try:
        classic_figures, results = await _drive(sim, numbers, classic_calls,
                                                CLASSIC_CONCURRENCY)
    finally:
        await sim.stop()
    bench.expect("classic AGI: calls ended with their order announced", len(results),
                 len(_done(results)))
    await _check_orders(bench, "classic AGI", classic_url, [r["uniqueid"] for r in results],
                        with_call_records=False)
    await bench.no_tasks_left("classic AGI run")
    bench.report("inbound calls: classic pyst2 AGI, process per call", classic_figures)
    bench.report("inbound calls: ratios (engine on the production stack when configured)", {
        "engine/bare throughput": engine_figures["calls_per_s"] / bare_figures["calls_per_s"],
        "goal engine/bare": ">= 0.5",
        "engine/bare CPU per call (this process's CPU time)":
            engine_figures[CPU_PER_CALL] / bare_figures[CPU_PER_CALL],
        "goal engine/bare CPU": "<= 3",
        "engine/classic throughput":
            engine_figures["calls_per_s"] / classic_figures["calls_per_s"],
        "goal engine/classic": ">= 30",
        "classic concurrency": CLASSIC_CONCURRENCY,
        "commands per call": len(commands),
    })


def run(bench: Bench, calls: int = 3000, concurrency: int = 500,
        classic_calls: int = 200) -> None:
    asyncio.run(_run(bench, calls, concurrency, classic_calls))
