"""Inbound calls per second and added latency per AGI command at 500 concurrent calls.

Three servers answer the same 12349 call from the same simulator, one after the other:
the engine (lookup, order committed, Redis live state), a bare FastAGI server sending the
engine's exact command sequence with no work behind it (the protocol ceiling), and a classic
pyst2 AGI script started as one process per call.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dispatch.stats import percentile
from ivr.config import load_settings
from ivr.demo.simproc import SimulatorProcess
from ivr.engine import Engine
from tests.bench.bare_fastagi import BareFastAgi

BENCH_DIR = Path("var") / "bench"
FAST = 1_000_000.0  # simulated time: prompts and pauses take no real time
# 500 concurrent Python processes (about 60 MB each) would exhaust this machine's memory; the
# classic script is measured at the concurrency it can sustain, which only flatters it.
CLASSIC_CONCURRENCY = 40


def caller(number: str) -> dict[str, Any]:
    script = [{"press": "1", "delay": 0.0}, {"press": "1", "delay": 0.0}]
    return {"number": number, "name": "", "to": "12349", "context": "from-pstn",
            "script": script, "hangup_after": None}


async def _drive(sim: SimulatorProcess, numbers: list[str], calls: int, concurrency: int
                 ) -> dict[str, Any]:
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
    done = sum(1 for r in results if r.get("variables", {}).get("HOTLINE_ROUTE") == "done")
    return {"calls": calls, "completed_with_order": done, "seconds": elapsed,
            "calls_per_s": calls / elapsed, "cmd_p50_ms": percentile(latencies, 50),
            "cmd_p99_ms": percentile(latencies, 99), "commands": len(latencies),
            "sample": results[0] if results else None}


def _classic_dir(db_url: str) -> Path:
    folder = (BENCH_DIR / "classic").resolve()
    folder.mkdir(parents=True, exist_ok=True)
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


async def _engine_figures(db_url: str, redis_url: str, numbers: list[str], calls: int,
                          concurrency: int) -> dict[str, Any]:
    settings = load_settings(
        None, database={"url": db_url, "pool_size": 20},
        redis={"url": redis_url, "embedded_path": str(BENCH_DIR / "redis.db"),
               "key_prefix": "bench:"},
        agi={"port": 0}, ami={"enabled": False}, clock={"speed": 1.0},
    )
    engine = Engine(settings)
    await engine.start(migrate=False, connect_ami=False)
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{engine.agi_port}", speed=FAST,
                                       log_path=BENCH_DIR / "sim.log")
    try:
        await _drive(sim, numbers, 50, 50)
        return await _drive(sim, numbers, calls, concurrency)
    finally:
        await sim.stop()
        await engine.stop()


def _city(db_url: str) -> list[str]:
    from dispatch.citygen import generate_city, sample_numbers
    from dispatch.db import upgrade

    upgrade(db_url)
    generate_city(db_url, elders=10_000, vendors=40, seed=7)
    return sample_numbers(db_url, 500, 7)["elders"]


def _postgres_schema_url() -> str | None:
    base = os.environ.get("HOTLINE_TEST_DATABASE_URL")
    if not base:
        return None
    from sqlalchemy import text

    from dispatch.db import make_sync_engine, with_schema

    admin = make_sync_engine(base)
    with admin.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS bench_calls CASCADE"))
        conn.execute(text("CREATE SCHEMA bench_calls"))
    admin.dispose()
    return with_schema(base, "bench_calls")


async def _run(report: Callable[[str, dict[str, Any]], None], calls: int, concurrency: int,
               classic_calls: int) -> None:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    db_path = BENCH_DIR / "calls.sqlite3"
    db_path.unlink(missing_ok=True)
    db_url = f"sqlite:///{db_path.resolve()}"  # the classic script runs in another directory
    numbers = _city(db_url)
    engine_figures = await _engine_figures(db_url, "", numbers, calls, concurrency)
    sample = engine_figures.pop("sample")
    commands = [c[0] for c in sample["agi"][0]["commands"]]
    report("inbound calls: engine on SQLite + embedded Redis", engine_figures)

    pg_url, redis_url = _postgres_schema_url(), os.environ.get("HOTLINE_TEST_REDIS_URL", "")
    if pg_url and redis_url:
        pg_numbers = _city(pg_url)
        pg_figures = await _engine_figures(pg_url, redis_url, pg_numbers, calls, concurrency)
        pg_figures.pop("sample")
        report("inbound calls: engine on PostgreSQL + Redis", pg_figures)
        engine_figures = pg_figures

    bare = BareFastAgi(commands)
    port = await bare.start()
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{port}", speed=FAST,
                                       log_path=BENCH_DIR / "sim.log")
    try:
        await _drive(sim, numbers, 50, 50)
        bare_figures = await _drive(sim, numbers, calls, concurrency)
    finally:
        await sim.stop()
        await bare.close()
    bare_figures.pop("sample")
    report("inbound calls: bare FastAGI (protocol ceiling)", bare_figures)

    sim = await SimulatorProcess.start(agi_url=str(_classic_dir(db_url)), speed=FAST,
                                       log_path=BENCH_DIR / "sim.log",
                                       extra_args=["--agi-idle-timeout", "600"])
    try:
        classic_figures = await _drive(sim, numbers, classic_calls, CLASSIC_CONCURRENCY)
    finally:
        await sim.stop()
    classic_figures.pop("sample")
    report("inbound calls: classic pyst2 AGI, process per call", classic_figures)
    report("inbound calls: ratios (engine on the production stack when configured)", {
        "engine/bare throughput": engine_figures["calls_per_s"] / bare_figures["calls_per_s"],
        "goal engine/bare": ">= 0.5",
        "engine/classic throughput":
            engine_figures["calls_per_s"] / classic_figures["calls_per_s"],
        "goal engine/classic": ">= 30",
        "classic concurrency": CLASSIC_CONCURRENCY,
        "commands per call": len(commands),
    })


def run(report: Callable[[str, dict[str, Any]], None], calls: int = 3000,
        concurrency: int = 500, classic_calls: int = 200) -> None:
    asyncio.run(_run(report, calls, concurrency, classic_calls))
