"""Emergencies at 500 concurrent calls: how long after a handset call is answered it enters
the operator queue, and when the operators' screen pop comes relative to that.

Handset calls arrive at a steady rate and stay up (waiting, then talking to one of the
operators) long enough that 500 are in progress at once; every one starts a family
escalation too (the family phones answer and press nothing, so each contact is called in
turn). The times are the PBX's: the simulator stamps when it answered the call and when the
Queue application started, in simulated time at a known speed, and the screen pop's time is its
Redis stream entry id, on the same machine clock.

Baseline, same run and load: a bare FastAGI server that sends the engine's own command sequence
for an emergency with no work behind it, so the difference is the engine's added latency. A
third run sends 500 calls in the same instant, the worst case, reported as it is.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch.stats import percentile
from ivr.config import load_settings
from ivr.demo.simproc import SimulatorProcess
from ivr.engine import Engine, freeze_startup_objects
from tests.bench.bare_fastagi import BareFastAgi
from tests.bench.calls import BENCH_DIR, _city

# Real time, as in production: prompts, rings and the engine's background loops (the emergency
# watch, escalation resume, spool scans) at their real pace; the handset route plays nothing.
SPEED = 1.0
HOLD_REAL_S = 50.0  # each call stays up this long (talking to its operator)
RATE_PER_S = 10.0  # arrivals: RATE x HOLD = 500 calls in progress
CALLS = 1000
BURST = 500
OPERATORS = [{"name": f"op{i}", "answer_delay_s": 1.0, "talk_s": HOLD_REAL_S * SPEED,
              "available": True} for i in range(540)]
# The engine's emergency route as the PBX sees it, sent with no work behind it.
BARE_EMERGENCY = ["ANSWER", "GET VARIABLE CHANNEL(linkedid)",
                  "SET VARIABLE HOTLINE_REASON handset_emergency",
                  "SET VARIABLE HOTLINE_PRIORITY 10", "SET VARIABLE HOTLINE_ELDER_ID 1",
                  "SET VARIABLE HOTLINE_ROUTE operator"]


@dataclass
class Timing:
    uniqueid: str
    arrived: float  # simulated seconds
    ended: float
    answered_to_queue_ms: float | None
    queue_real: float | None  # wall time the Queue application started


def timings(results: Sequence[dict[str, Any]], real_start: float) -> list[Timing]:
    out = []
    for result in results:
        queue_at = next((at for at, app, _ in result["apps"] if app == "Queue"), None)
        answered = result["answered_at"]
        out.append(Timing(
            uniqueid=result["uniqueid"], arrived=result["started_at"],
            ended=result["ended_at"] or result["started_at"],
            answered_to_queue_ms=None if queue_at is None or answered is None
            else (queue_at - answered) / SPEED * 1000,
            queue_real=None if queue_at is None else real_start + queue_at / SPEED,
        ))
    return out


def in_progress_at_arrival(calls: Sequence[Timing]) -> list[int]:
    """For each call, how many calls were in progress when it arrived (itself included)."""
    return [sum(1 for other in calls if other.arrived <= call.arrived < other.ended)
            for call in calls]


async def drive(sim: SimulatorProcess, handsets: Sequence[str], calls: int,
                rate_per_s: float | None) -> list[dict[str, Any]]:
    """``calls`` handset calls, ``rate_per_s`` apart (None: all at once)."""
    async def one(i: int) -> dict[str, Any]:
        if rate_per_s is not None:
            await asyncio.sleep(i / rate_per_s)
        return await sim.call({"number": handsets[i % len(handsets)], "to": "12349",
                               "context": "from-pstn", "script": [], "hangup_after": None})

    return list(await asyncio.gather(*(one(i) for i in range(calls))))


async def screen_pops(engine: Engine) -> dict[str, float]:
    """uniqueid -> wall time of its screen pop (the stream entry id)."""
    assert engine.context is not None
    live = engine.context.live
    pops = {}
    for entry_id, fields in await live._client.xrange(live.stream_key):
        if fields[b"type"] == b"screen_pop":
            pops[json.loads(fields[b"data"])["uniqueid"]] = int(entry_id.split(b"-")[0]) / 1000
    return pops


def figures(label: str, calls: list[Timing], pops: dict[str, float] | None,
            steady_from: int) -> dict[str, Any]:
    concurrency = in_progress_at_arrival(calls)
    steady = calls[steady_from:]  # in arrival order: the first ones only ramp the load up
    to_queue = [c.answered_to_queue_ms for c in steady if c.answered_to_queue_ms is not None]
    out: dict[str, Any] = {
        f"{label}: calls measured": len(steady),
        f"{label}: in progress at their arrival, min-max":
            f"{min(concurrency[steady_from:])}-{max(concurrency[steady_from:])}",
        f"{label}: answer -> queue p50 ms": percentile(to_queue, 50),
        f"{label}: answer -> queue p99 ms": percentile(to_queue, 99),
    }
    if pops is not None:
        after = [(pops[c.uniqueid] - c.queue_real) * 1000 for c in steady
                 if c.uniqueid in pops and c.queue_real is not None]
        out[f"{label}: screen pops"] = len(after)
        out[f"{label}: queue -> screen pop p50 ms"] = percentile(after, 50)
        out[f"{label}: queue -> screen pop p99 ms"] = percentile(after, 99)
    return out


async def _engine_run(db_url: str, handsets: list[str], calls: int, rate: float | None
                      ) -> tuple[list[Timing], dict[str, float]]:
    settings = load_settings(
        None, database={"url": db_url}, agi={"port": 0}, ami={"enabled": False},
        redis={"url": "", "embedded_path": str(BENCH_DIR / "redis-emergency.db"),
               "key_prefix": f"benche{time.monotonic_ns()}:"},
        clock={"speed": SPEED}, spool={"dir": str(BENCH_DIR / "spool")},
        alarms={"spool_dir": str(BENCH_DIR / "alarms")}, dispatch={"enabled": False},
    )
    engine = Engine(settings)
    await engine.start(migrate=False, connect_ami=False)
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{engine.agi_port}",
                                       speed=SPEED, log_path=BENCH_DIR / "sim.log")
    try:
        settings.ami.enabled, settings.ami.port = True, int(sim.ami_port or 0)
        settings.ami.secret = sim.ami_secret
        await engine.start_ami()
        freeze_startup_objects()  # as the engine process does
        await sim.request("operators", operators=OPERATORS)
        results = await drive(sim, handsets, calls, rate)
        pops = await screen_pops(engine)
    finally:
        await engine.stop()
        await sim.stop()
    return timings(results, sim.real_start), pops


async def _bare_run(handsets: list[str], calls: int, rate: float) -> list[Timing]:
    bare = BareFastAgi(BARE_EMERGENCY)
    port = await bare.start()
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{port}", speed=SPEED,
                                       log_path=BENCH_DIR / "sim.log")
    try:
        await sim.request("operators", operators=OPERATORS)
        results = await drive(sim, handsets, calls, rate)
    finally:
        await sim.stop()
        await bare.close()
    return timings(results, sim.real_start)


def fresh_copy(city: Path) -> str:
    """A copy of the generated city for one run: no open emergencies left by another run
    (the engine would resume their escalations and call them back)."""
    run_db = city.with_name("emergency-run.sqlite3")
    shutil.copyfile(city, run_db)
    return f"sqlite:///{run_db.resolve()}"


async def _run(report: Callable[[str, dict[str, Any]], None], calls: int) -> None:
    city = BENCH_DIR / "emergency.sqlite3"
    city.unlink(missing_ok=True)
    db_url = f"sqlite:///{city.resolve()}"
    _city(db_url)
    from dispatch.citygen import sample_numbers

    handsets = sample_numbers(db_url, 500, 7)["handsets"]
    steady_from = int(RATE_PER_S * HOLD_REAL_S)
    bare = await _bare_run(handsets, calls, RATE_PER_S)
    steady, pops = await _engine_run(fresh_copy(city), handsets, calls, RATE_PER_S)
    burst, burst_pops = await _engine_run(fresh_copy(city), handsets, BURST, None)
    report("emergencies: handset calls at 500 concurrent", {
        "arrivals per s, each call up s": f"{RATE_PER_S:g}, {HOLD_REAL_S:g}",
        **figures("baseline, bare FastAGI", bare, None, steady_from),
        **figures("engine", steady, pops, steady_from),
        **figures(f"engine, {BURST} in the same instant", burst, burst_pops, 0),
        "note": "PBX times: answer stamped by the simulator, queue = Queue app start; "
                "screen pop = its Redis entry time; negative: the pop came first",
        "goal p99": "< 200 ms each, at 500 concurrent calls",
    })


def run(report: Callable[[str, dict[str, Any]], None], calls: int = CALLS) -> None:
    asyncio.run(_run(report, calls))


if __name__ == "__main__":
    from tests.bench.__main__ import report as print_report

    run(print_report)
