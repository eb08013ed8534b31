"""The disaster minute with its faults: 5,000 handset emergencies arriving within 60 s through
two engine processes behind HAProxy, on PostgreSQL and a Redis primary with a replica under
three Sentinels, while, one after the other:

- at 10 s one engine process is killed with SIGKILL (and not restarted);
- at 20 s the Redis primary is killed with SIGKILL and the Sentinels promote the replica;
- from 30 s PostgreSQL is unreachable for 10 s (a TCP relay between the engines and the
  server closes every connection and refuses new ones);
- from 45 s the PBX's AMI link is cut for 10 s (the same kind of relay).

Then one more handset call: the engine left serves it, without a restart.

Checks, as for the disaster minute without faults (tests/bench/emergency.py): every call
reached the queue, and has its screen pop in the stream on the Redis primary of the end, its
emergency order (once), its call record pointing to it, its queue entry and its family
escalation begun; what the dialplan spooled and no engine replayed is replayed as the next
engine start would, and counted. No family member is rung twice for one order. No engine
logs an error. Figures: answer -> queue over the minute and in each fault's window.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import make_url

from dispatch.citygen import sample_numbers
from dispatch.stats import percentile
from ivr.config import DialSettings
from ivr.demo.simproc import SimulatorProcess
from tests.bench.calls import _city, _postgres_schema_url
from tests.bench.checks import Bench, standalone, stream_events
from tests.bench.emergency import (
    DISASTER_CALLS,
    DISASTER_HOLD_S,
    DISASTER_WINDOW_S,
    ENGINE_STOP_S,
    SPEED,
    Timing,
    _check_emergencies,
    drive,
    escalations_begun,
    first_pops,
    operators,
    replay_left_spool,
    timings,
)
from tests.haproxy import HAProxy
from tests.ports import closed_port
from tests.processes import engine_env, engine_process, engines, listening, stop_engines
from tests.redis_sentinel import SERVICE, SentinelGroup
from tests.tcp_proxy import CuttableProxy

ENGINES = 2
KILL_AT_S = 10.0
REDIS_AT_S = 20.0
DATABASE_AT_S, DATABASE_DOWN_S = 30.0, 10.0
AMI_AT_S, AMI_DOWN_S = 45.0, 10.0


@dataclass
class FaultLog:
    """When each fault began and ended, seconds after the first call (wall clock)."""

    start: float = field(default_factory=time.time)
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)

    def since(self) -> float:
        return time.time() - self.start


async def _at(log: FaultLog, second: float) -> None:
    await asyncio.sleep(max(0.0, second - log.since()))


async def _faults(log: FaultLog, running: list[Any], redis: SentinelGroup,
                  database: CuttableProxy, ami: CuttableProxy) -> None:
    await _at(log, KILL_AT_S)
    began = log.since()
    running[0].send_signal(signal.SIGKILL)
    await asyncio.to_thread(running[0].wait, 10)
    log.windows["engine killed"] = (began, log.since())
    await _at(log, REDIS_AT_S)
    began = log.since()
    redis.primary.kill()
    await redis.failed_over()
    log.windows["Redis primary killed, replica promoted"] = (began, log.since())
    await _cut(log, "PostgreSQL unreachable", DATABASE_AT_S, database, DATABASE_DOWN_S)
    await _cut(log, "AMI link cut", AMI_AT_S, ami, AMI_DOWN_S)


async def _cut(log: FaultLog, name: str, at_s: float, relay: CuttableProxy, down_s: float
               ) -> None:
    """From ``at_s``, nothing passes ``relay`` for ``down_s``."""
    await _at(log, at_s)
    began = log.since()
    await relay.cut()
    await asyncio.sleep(down_s)
    relay.restore()
    log.windows[name] = (began, log.since())


def _family_calls_twice(originated: list[dict[str, Any]]) -> tuple[int, list[Any]]:
    """(family calls placed, the (order, contact) pairs rung more than once)."""
    rung = Counter((call["variables"].get("HOTLINE_ORDER_ID"),
                    call["variables"].get("HOTLINE_CONTACT_ID"))
                   for call in originated if call["context"] == "hotline-family-alert")
    return sum(rung.values()), [pair for pair, n in rung.items() if n > 1]


def _window_figures(calls: list[Timing], real_start: float, log: FaultLog
                    ) -> dict[str, str]:
    """answer -> queue p50 / p99 of the calls that arrived in each fault's window."""
    out = {}
    offset = real_start - log.start  # the simulator's start, on the fault log's clock
    for name, (began, ended) in log.windows.items():
        waits = [c.answered_to_queue_ms for c in calls
                 if c.answered_to_queue_ms is not None
                 and began <= offset + c.arrived / SPEED <= ended + 1.0]
        out[f"{name} at {began:.0f}-{ended:.0f} s: calls, answer -> queue p50 / p99 ms"] = (
            f"{len(waits)}, {percentile(waits, 50):.0f} / {percentile(waits, 99):.0f}"
            if waits else "no call")
    return out


async def _run(bench: Bench, calls: int) -> None:
    if not os.environ.get("HOTLINE_TEST_DATABASE_URL") or shutil.which("haproxy") is None \
            or shutil.which("redis-server") is None:
        bench.report("faults", {"skipped": "needs PostgreSQL, redis-server and HAProxy"})
        return
    run = bench.run_dir("faults")
    db_url = _postgres_schema_url("bench_faults")
    assert db_url is not None
    _city(db_url)
    handsets = sample_numbers(db_url, 500, 7)["handsets"]
    redis = SentinelGroup(run / "redis")
    await redis.start()
    direct = make_url(db_url)
    database = CuttableProxy(direct.port or 5432)
    engine_db_url = direct.set(port=await database.start()).render_as_string(
        hide_password=False)
    agi_ports = [closed_port() for _ in range(ENGINES)]
    balancer = HAProxy(run, closed_port(), agi_ports)
    await balancer.start()
    sim: SimulatorProcess | None = None
    ami: CuttableProxy | None = None
    log = FaultLog()
    try:
        queue_log = run / "queue_log"  # app_queue's, read back after the AMI cut
        sim = await SimulatorProcess.start(
            agi_url=f"agi://127.0.0.1:{balancer.port}", speed=SPEED,
            log_path=bench.log_file(run / "sim.log"),
            extra_args=("--queue-log", str(queue_log)),
            globals_={"HOTLINE_SPOOL_DIR": str(run / "spool")})
        ami = CuttableProxy(sim.ami_port)
        pbx = SimpleNamespace(ami_port=await ami.start(), ami_secret=sim.ami_secret)
        env = engine_env(engine_db_url, "redis://127.0.0.1/0", pbx, run, SPEED,
                         DISPATCH__ENABLED="false",
                         DIAL__RING_TIMEOUT_S=str(DialSettings().ring_timeout_s),
                         REDIS__SENTINELS=json.dumps(redis.addresses),
                         REDIS__SENTINEL_SERVICE=SERVICE, AMI__QUEUE_LOG=str(queue_log))
        engines_log = bench.log_file(run / "engines.log")
        with engines(stop_timeout_s=ENGINE_STOP_S) as running:
            for port in agi_ports:
                running.append(engine_process(env, port, engines_log))
            for port, process in zip(agi_ports, running, strict=True):
                await listening(port, process)
            await balancer.engines_up(ENGINES)
            await sim.request("operators", operators=operators(DISASTER_HOLD_S))
            log = FaultLog()
            faults = asyncio.create_task(_faults(log, running, redis, database, ami))
            results = await drive(sim, handsets, calls, calls / DISASTER_WINDOW_S)
            await faults
            results += await drive(sim, handsets[-1:], 1, None)  # the engine left goes on
            catch_up_s = await escalations_begun(db_url, [r["uniqueid"] for r in results])
            client = aioredis.Redis(port=await redis.primary_port())
            try:
                pops = first_pops(await stream_events(
                    client, f"{env['HOTLINE_REDIS__KEY_PREFIX']}events", "screen_pop"))
            finally:
                await client.aclose()
            originated = (await sim.request("originated"))["originated"]
            # stopped while this loop still relays their database and AMI traffic
            await asyncio.to_thread(stop_engines, running, ENGINE_STOP_S)
    finally:
        if sim is not None:
            await sim.stop()
        balancer.stop()
        if ami is not None:
            await ami.close()
        await database.close()
        redis.stop()
    label = "disaster minute with faults"
    calls_made = timings(results, sim.real_start)
    replayed = await replay_left_spool(db_url, run / "spool")
    await _check_emergencies(bench, label, db_url, calls_made, pops)
    placed, twice = _family_calls_twice(originated)
    bench.expect(f"{label}: family members rung twice for one order", 0, len(twice))
    last = results[-1]
    bench.expect(f"{label}: the call after the faults queued as a handset emergency", 1,
                 int(last["variables"].get("HOTLINE_REASON") == "handset_emergency"))
    waits = [c.answered_to_queue_ms for c in calls_made if c.answered_to_queue_ms is not None]
    bench.report(f"emergencies: {calls:,} within {DISASTER_WINDOW_S:g} s, with faults, "
                 f"{ENGINES} engines behind HAProxy, PostgreSQL + Redis under Sentinel", {
                     "answer -> queue p50 / p99 ms, all calls":
                         f"{percentile(waits, 50):.0f} / {percentile(waits, 99):.0f}",
                     **_window_figures(calls_made, sim.real_start, log),
                     "family calls placed": placed,
                     "orders made from the dialplan's spool after the run": replayed,
                     "every escalation begun, s after the last call":
                         "not within 300 s" if catch_up_s is None else round(catch_up_s, 1),
                 })


def run(bench: Bench, calls: int = DISASTER_CALLS) -> None:
    asyncio.run(_run(bench, calls))


if __name__ == "__main__":
    standalone("faults", run)
