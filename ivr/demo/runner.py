"""``hotline demo``: the engine on embedded defaults, the simulator, 300+ calls, a summary."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

from dispatch.alarm_report import AlarmReport, alarm_report
from ivr.config import load_settings
from ivr.demo.scenario import NumberPools, PlannedCall, plan_calls
from ivr.demo.simproc import SimulatorProcess
from ivr.demo.summary import build_summary, print_summary
from ivr.engine import Engine

DEMO_DIR = Path("var") / "demo"
OPERATORS = [
    {"name": f"op{i}", "answer_delay_s": 4.0 + 2 * i, "talk_s": 90.0, "available": True}
    for i in range(1, 7)
]
MAX_IN_FLIGHT = 400


async def run_demo(*, calls: int, speed: float, seed: int, elders: int, vendors: int) -> int:
    from dispatch.citygen import generate_city, sample_numbers
    from dispatch.db import upgrade

    if calls < 1:
        print("hotline demo: --calls must be at least 1", file=sys.stderr)
        return 2
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    db_url = f"sqlite:///{DEMO_DIR / 'hotline.sqlite3'}"
    settings = load_settings(
        None,
        database={"url": db_url},
        redis={"url": "", "embedded_path": str(DEMO_DIR / "redis.db")},
        agi={"port": 0},
        ami={"enabled": False},
        clock={"speed": speed},
        spool={"dir": str((DEMO_DIR / "spool").resolve())},
    )
    started = time.monotonic()
    print(f"Generating a synthetic city of {elders:,} elders and {vendors} vendors ...")
    await asyncio.to_thread(upgrade, db_url)
    await asyncio.to_thread(generate_city, db_url, elders=elders, vendors=vendors, seed=seed)
    numbers = await asyncio.to_thread(sample_numbers, db_url, 400, seed)
    pools = NumberPools(numbers["elders"], numbers["family"], numbers["handsets"],
                        numbers["unknown"])

    engine = Engine(settings)
    await engine.start(migrate=False, connect_ami=False)
    sim = await SimulatorProcess.start(
        agi_url=f"agi://127.0.0.1:{engine.agi_port}", speed=speed,
        log_path=DEMO_DIR / "sim.log", globals_={"HOTLINE_SPOOL_DIR": str(settings.spool.dir)},
    )
    try:
        await _connect_ami(engine, sim)
        await sim.request("operators", operators=OPERATORS)
        spread_s = max(60.0, calls * 6.0)
        plan = plan_calls(calls, pools, seed, spread_s)
        print(f"Playing {calls} calls over {spread_s / 60:.0f} simulated minutes "
              f"at {speed:g}x through the simulator ...")
        await _play(sim, plan, speed)
        await asyncio.sleep(1.0)  # the last queue events reach the engine
        alarms = await _alarm_figures(engine)
    finally:
        await engine.stop()
        await sim.stop()
    summary = await asyncio.to_thread(build_summary, db_url, plan, speed,
                                      time.monotonic() - started)
    summary.alarms = alarms
    print_summary(summary)
    return 1 if summary.lost_calls or summary.lost_emergencies else 0


async def _alarm_figures(engine: Engine) -> AlarmReport:
    assert engine.context is not None
    now = engine.context.now()
    async with engine.context.sessions() as session:
        return await alarm_report(session, now - timedelta(days=7), now + timedelta(days=1),
                                  now)


async def _connect_ami(engine: Engine, sim: SimulatorProcess) -> None:
    if sim.ami_port is None:
        return
    engine.settings.ami.enabled = True
    engine.settings.ami.port = int(sim.ami_port)
    engine.settings.ami.secret = sim.ami_secret
    await engine.start_ami()


async def _play(sim: SimulatorProcess, plan: list[PlannedCall], speed: float) -> None:
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    begin = time.monotonic()

    async def place(call: PlannedCall) -> None:
        delay = call.start_offset_s / speed - (time.monotonic() - begin)
        if delay > 0:
            await asyncio.sleep(delay)
        async with slots:
            try:
                call.result = await sim.call(call.caller)
            except Exception as exc:  # the summary reports it as a lost call
                call.extra["error"] = str(exc)

    await asyncio.gather(*(place(call) for call in plan))
