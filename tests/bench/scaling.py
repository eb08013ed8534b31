"""Inbound calls through 1, 2 and 4 engine processes behind HAProxy, driven by the lean
FastAGI driver (tests/bench/lean_driver.py) instead of the simulator: the calls per second
of each, the scaling efficiency, and the engines' CPU per call against the bare FastAGI
server's under the same driver.

The keypad call of the inbound benchmark (answer, lookup, greeting, menu 1, confirm 1, the
order committed and its number read back) is recorded once through the simulator; the
driver then plays the Asterisk end of that call ``CALLS`` times, ``CONCURRENCY`` at a time,
in a process of its own. The engines run on PostgreSQL and Redis, one process each, as
``hotline engine`` runs; their CPU is read from /proc around the measured calls. The bare
server answers the same commands in this process, with no work behind them.

Checks: every call driven (warm-up included) reached its order's read-back; each has exactly
one order in the database and its call record pointing to it; no engine logged an error.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ivr.demo.simproc import SimulatorProcess
from tests.bench.bare_fastagi import BareFastAgi
from tests.bench.calls import FAST, _city, _postgres_schema_url, caller
from tests.bench.checks import Bench, Stored, standalone
from tests.bench.emergency import process_cpu_s
from tests.bench.lean_driver import Transcript, lean_drive
from tests.haproxy import HAProxy
from tests.ports import closed_port
from tests.processes import engine_env, engine_process, engines, listening

ENGINE_COUNTS = (1, 2, 4)
CALLS = 3000
WARMUP = 200
CONCURRENCY = 200


async def _record(port: int, number: str, run: Path, bench: Bench) -> Transcript:
    """One keypad call through the simulator: what the driver will replay."""
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{port}", speed=FAST,
                                       log_path=bench.log_file(run / "sim.log"))
    try:
        return Transcript.of(await sim.call(caller(number)))
    finally:
        await sim.stop()


async def _engines(bench: Bench, count: int, db_url: str, numbers: list[str],
                   transcript: Transcript | None) -> tuple[dict[str, Any], Transcript]:
    """``count`` engine processes behind HAProxy: their figures, checked."""
    run = bench.run_dir(f"{count}-engines")
    ports = [closed_port() for _ in range(count)]
    balancer = HAProxy(run, closed_port(), ports)
    await balancer.start()
    no_pbx = SimpleNamespace(ami_port=closed_port(), ami_secret="")
    env = engine_env(db_url, os.environ["HOTLINE_TEST_REDIS_URL"], no_pbx, run, 1.0,
                     AMI__ENABLED="false", DISPATCH__ENABLED="false")
    log = bench.log_file(run / "engines.log")
    prefix = 1_800_000_000 + 10 * count  # uniqueids as Asterisk writes them: epoch.sequence
    try:
        with engines() as running:
            for port in ports:
                running.append(engine_process(env, port, log))
            for port, process in zip(ports, running, strict=True):
                await listening(port, process)
            await balancer.engines_up(count)
            if transcript is None:
                transcript = await _record(balancer.port, numbers[0], run, bench)
            warm = await lean_drive(balancer.port, transcript, numbers, WARMUP, f"{prefix}")
            cpu = sum(process_cpu_s(process.pid) for process in running)
            measured = await lean_drive(balancer.port, transcript, numbers, CALLS,
                                        f"{prefix + 1}")
            cpu = sum(process_cpu_s(process.pid) for process in running) - cpu
    finally:
        balancer.stop()
    label = f"{count} engine process{'es' if count > 1 else ''}"
    every = warm["done"] + measured["done"]
    bench.expect(f"{label}: calls that reached their order's read-back", WARMUP + CALLS,
                 len(every))
    async with Stored(db_url) as stored:
        orders = await stored.orders_of_calls(every)
        bench.missing(f"{label}: orders in the database", every, orders)
        bench.once_each(f"{label}: orders in the database", orders)
        bench.missing(f"{label}: call records pointing to their order", every,
                      await stored.call_records(every, with_their_order=True))
    return {"calls per s": CALLS / measured["seconds"],
            "engines' CPU ms per call": cpu * 1000 / CALLS,
            "call p50 / p99 ms": f"{measured['call p50 ms']:.0f} / {measured['call p99 ms']:.0f}",
            "driver CPU ms per call": measured["driver CPU ms per call"],
            "not done": measured["not done"]}, transcript


async def _bare(transcript: Transcript, numbers: list[str]) -> dict[str, Any]:
    """The bare FastAGI server in this process, under the same driver."""
    bare = BareFastAgi([command for command, _ in transcript.steps])
    port = await bare.start()
    try:
        await lean_drive(port, transcript, numbers, WARMUP, "1800009000")
        cpu = time.process_time()
        measured = await lean_drive(port, transcript, numbers, CALLS, "1800009001")
        cpu = time.process_time() - cpu
    finally:
        await bare.close()
    return {"calls per s": CALLS / measured["seconds"], "CPU ms per call": cpu * 1000 / CALLS,
            "sessions served": bare.sessions}


async def _run(bench: Bench) -> None:
    if not (os.environ.get("HOTLINE_TEST_DATABASE_URL")
            and os.environ.get("HOTLINE_TEST_REDIS_URL")) or shutil.which("haproxy") is None:
        bench.report("scaling", {"skipped": "needs PostgreSQL, Redis and HAProxy"})
        return
    db_url = _postgres_schema_url("bench_scaling")
    assert db_url is not None
    numbers = _city(db_url)
    transcript: Transcript | None = None
    runs: dict[int, dict[str, Any]] = {}
    for count in ENGINE_COUNTS:
        runs[count], transcript = await _engines(bench, count, db_url, numbers, transcript)
    assert transcript is not None
    bare = await _bare(transcript, numbers)
    bench.expect("bare FastAGI: sessions served", WARMUP + CALLS, bare["sessions served"])
    one = runs[1]["calls per s"]
    figures: dict[str, Any] = {"bare FastAGI: calls per s": bare["calls per s"],
                               "bare FastAGI: CPU ms per call": bare["CPU ms per call"]}
    for count, figures_of in runs.items():
        label = f"{count} engine process{'es' if count > 1 else ''}"
        figures.update({f"{label}: {name}": value for name, value in figures_of.items()})
        figures[f"{label}: scaling efficiency"] = figures_of["calls per s"] / (count * one)
    figures["1 engine / bare CPU per call"] = (runs[1]["engines' CPU ms per call"]
                                               / bare["CPU ms per call"])
    figures["goal"] = "engine CPU per call within 3x of the bare server's"
    figures["cores"] = os.cpu_count()
    bench.report(f"inbound calls through the lean FastAGI driver, {CALLS:,} calls, "
                 f"{CONCURRENCY} at once, PostgreSQL + Redis", figures)


def run(bench: Bench) -> None:
    asyncio.run(_run(bench))


if __name__ == "__main__":
    standalone("scaling", run)
