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
second pair sends 500 calls in the same instant, the worst case, to the bare server and to an
engine process of its own behind HAProxy, as deployed, on PostgreSQL and Redis (in this
process where those or HAProxy are missing): there the simulator driving the calls is itself
slow, and the bare server's figures show how much of the delay is the driver's. The same
burst from the lean FastAGI driver (tests/bench/lean_driver.py: no dialplan, no channels)
shows the engine's own share, from each connection to its route to the queue. The last runs
play the disaster minute: 5,000 handset calls spread over 60 s, each talking 5 s with its
operator, to the bare server, then to one engine process behind HAProxy (the shipped
configuration) on PostgreSQL and Redis (one engine in this process on SQLite where those or
HAProxy are missing), and 3,000 to two engine processes behind HAProxy, with the engines' and
the simulator's CPU seconds per call and how long after the last call every family escalation
had begun; every call is checked as above.

Every emergency of an engine run must leave its emergency order (exactly one), its call
record pointing to it, its queue entry, its screen pop in Redis and the start of its family
escalation, and reach the Queue application; every baseline call must reach the Queue too.
Each engine run has a freshly generated city in a directory of its own.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from dispatch.citygen import sample_numbers
from dispatch.db import async_sessionmaker_for, make_async_engine
from dispatch.models import Call
from dispatch.spool_replay import replay_spool
from dispatch.stats import percentile
from ivr.config import DialSettings, IvrSettings, load_settings
from ivr.demo.simproc import SimulatorProcess
from ivr.engine import Engine, tune_garbage_collector
from tests.bench.bare_fastagi import BareFastAgi
from tests.bench.calls import _city, _postgres_schema_url
from tests.bench.checks import DRAIN_S, Bench, Stored, standalone, stream_events
from tests.bench.lean_driver import TO_OPERATOR, Transcript, lean_drive
from tests.haproxy import HAProxy
from tests.ports import closed_port
from tests.processes import engine_env, engine_process, engines, listening

# Real time, as in production: prompts, rings and the engine's background loops (the emergency
# watch, escalation resume, spool scans) at their real pace; the handset route plays nothing.
SPEED = 1.0
HOLD_REAL_S = 50.0  # each call stays up this long (talking to its operator)
RATE_PER_S = 10.0  # arrivals: RATE x HOLD = 500 calls in progress
CALLS = 1000
BURST = 500
# the disaster minute: this many handset calls spread evenly over the window, each talking
# DISASTER_HOLD_S with its operator; on PostgreSQL and Redis when they are configured
DISASTER_CALLS = 5000
DISASTER_WINDOW_S = 60.0
DISASTER_HOLD_S = 5.0
# (engine processes behind HAProxy, calls in the window), where PostgreSQL and Redis are: on
# two cores shared with the simulator, two engine processes carry fewer calls than one (each
# process its own share of every core; the simulator's own CPU per call is reported beside)
DISASTER_RUNS = ((1, DISASTER_CALLS), (2, 3000))
OPERATOR_COUNT = 540
# an engine process's stop after a disaster minute: its calls' grace, then each step bounded
ENGINE_STOP_S = 180.0
ESCALATION_CATCH_UP_S = 300.0  # after a disaster minute, to begin every family escalation
# begun: a family call made, none to make, or one waiting its turn for a trunk line
ESCALATION_BEGUN = ("family_called", "family_none", "family_waiting")
# The engine's emergency route as the PBX sees it, sent with no work behind it.
BARE_EMERGENCY = ["ANSWER",
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


def operators(hold_s: float) -> list[dict[str, Any]]:
    return [{"name": f"op{i}", "answer_delay_s": 1.0, "talk_s": hold_s * SPEED,
             "available": True} for i in range(OPERATOR_COUNT)]


async def screen_pops(engine: Engine) -> dict[str, float]:
    """uniqueid -> wall time of its screen pop (the stream entry id)."""
    assert engine.context is not None
    live = engine.context.live
    return first_pops(await stream_events(live._client, live.stream_key, "screen_pop"))


def first_pops(events: list[tuple[float, dict[str, Any]]]) -> dict[str, float]:
    """uniqueid -> wall time of its first screen pop (one sent without its outbox row, while
    the database was busy, may be published again by the relay once the row is in)."""
    first: dict[str, float] = {}
    for at, event in events:
        first[event["uniqueid"]] = min(at, first.get(event["uniqueid"], at))
    return first


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


def _servers_configured() -> bool:
    return bool(os.environ.get("HOTLINE_TEST_DATABASE_URL")
                and os.environ.get("HOTLINE_TEST_REDIS_URL"))


def _storage(run: Path, label: str, servers: bool) -> tuple[str, str]:
    """(database URL, Redis URL) of a run: a fresh PostgreSQL schema and the Redis server
    where ``servers`` and both are configured, else SQLite in ``run`` and the embedded
    Redis (an empty URL)."""
    pg_url = (_postgres_schema_url(f"bench_{label.replace(' ', '_')}")
              if servers and _servers_configured() else None)
    if pg_url is not None:
        return pg_url, os.environ["HOTLINE_TEST_REDIS_URL"]
    return f"sqlite:///{run / 'hotline.sqlite3'}", ""


async def _engine_in_process(run: Path, db_url: str, redis_url: str) -> Engine:
    """An engine started in this process on ``db_url`` and ``redis_url`` (the embedded
    Redis if empty), its files in ``run``: FastAGI only, no AMI, no dispatch."""
    engine = Engine(load_settings(
        None, database={"url": db_url}, agi={"port": 0}, ami={"enabled": False},
        redis={"url": redis_url, "embedded_path": str(run / "redis.db"),
               "key_prefix": f"benche{time.monotonic_ns()}:"},
        clock={"speed": SPEED}, spool={"dir": str(run / "spool")},
        alarms={"spool_dir": str(run / "alarms")}, dispatch={"enabled": False}))
    await engine.start(migrate=False, connect_ami=False)
    return engine


async def _engine_run(bench: Bench, label: str, calls: int, rate: float | None,
                      hold_s: float, servers: bool = False
                      ) -> tuple[list[Timing], dict[str, float]]:
    """The engine's run; with ``servers``, on PostgreSQL and Redis where configured."""
    run = bench.run_dir(label)
    db_url, redis_url = _storage(run, label, servers)
    _city(db_url)
    handsets = sample_numbers(db_url, 500, 7)["handsets"]
    engine = await _engine_in_process(run, db_url, redis_url)
    sim: SimulatorProcess | None = None
    try:
        sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{engine.agi_port}",
                                           speed=SPEED, log_path=bench.log_file(run / "sim.log"))
        await sim.connect_engine(engine)
        tune_garbage_collector()  # as the engine process does
        await sim.request("operators", operators=operators(hold_s))
        results = await drive(sim, handsets, calls, rate)
        pops = await screen_pops(engine)
    finally:
        await engine.stop(grace_s=DRAIN_S)
        if sim is not None:
            await sim.stop()
        gc.unfreeze()  # this process runs engine after engine: let the stopped one be freed
    await bench.no_tasks_left(f"{label} run")
    calls_made = timings(results, sim.real_start)
    check_inflight_released(bench, label, run / "spool")
    await _check_emergencies(bench, label, db_url, calls_made, pops)
    return calls_made, pops


async def _lean_burst(bench: Bench, burst: int) -> dict[str, Any]:
    """``burst`` handset calls in the same instant from the lean FastAGI driver (no
    simulator in their way), to one engine in this process (on PostgreSQL and Redis where
    configured) and to the bare server:
    connection -> the route to the operator queue. Each engine call is checked for its
    emergency order (once), its call record pointing to it and its screen pop (with no PBX
    behind the driver there is no queue entry and no family call to check)."""
    run = bench.run_dir("lean-burst")
    db_url, redis_url = _storage(run, "lean burst", servers=True)
    _city(db_url)
    handsets = sample_numbers(db_url, 500, 7)["handsets"]
    engine = await _engine_in_process(run, db_url, redis_url)
    try:
        sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{engine.agi_port}",
                                           speed=SPEED, log_path=bench.log_file(run / "sim.log"))
        try:
            await sim.request("operators", operators=operators(1.0))
            transcript = Transcript.of(await sim.call({
                "number": handsets[-1], "to": "12349", "context": "from-pstn", "script": [],
                "hangup_after": None}))
        finally:
            await sim.stop()
        tune_garbage_collector()  # as the engine process does
        through_engine = await lean_drive(engine.agi_port, transcript, handsets[:-1], burst,
                                          "1800008000", concurrency=burst, done=TO_OPERATOR)
        pops = await _all_pops(engine, through_engine["done"])
    finally:
        await engine.stop(grace_s=DRAIN_S)
        gc.unfreeze()
    await bench.no_tasks_left("lean burst run")
    bare = BareFastAgi([command for command, _ in transcript.steps])
    port = await bare.start()
    try:
        through_bare = await lean_drive(port, transcript, handsets[:-1], burst, "1800008001",
                                        concurrency=burst, done=TO_OPERATOR)
    finally:
        await bare.close()
    storage = "SQLite + embedded Redis" if redis_url == "" else "PostgreSQL + Redis"
    label = f"lean driver, {burst} in the same instant"
    routed = through_engine["done"]
    bench.expect(f"{label}: engine calls routed to the queue", burst, len(routed))
    bench.expect(f"{label}: bare calls routed", burst, len(through_bare["done"]))
    async with Stored(db_url) as stored:
        await _check_stored(bench, label, stored, routed, pops)
    return {f"{label}: engine's storage": storage,
            f"{label}, engine: connect -> route p50 / p99 ms":
            f"{through_engine['connect -> done p50 ms']:.0f} / "
            f"{through_engine['connect -> done p99 ms']:.0f}",
            f"{label}, bare FastAGI: connect -> route p50 / p99 ms":
            f"{through_bare['connect -> done p50 ms']:.0f} / "
            f"{through_bare['connect -> done p99 ms']:.0f}"}


async def _all_pops(engine: Engine, uniqueids: list[str], timeout_s: float = 60.0
                    ) -> dict[str, float]:
    """The screen pops in Redis once every call of ``uniqueids`` has one (an emergency's pop
    may follow its route), or as they are after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        pops = await screen_pops(engine)
        if all(uniqueid in pops for uniqueid in uniqueids) or loop.time() > deadline:
            return pops
        await asyncio.sleep(0.5)


async def _engines_run(bench: Bench, label: str, engine_count: int, calls: int,
                       rate: float | None, hold_s: float) -> EnginesRun | None:
    """The run through ``engine_count`` engine processes behind HAProxy (the shipped
    configuration), on PostgreSQL and Redis; None where those are not configured."""
    if not _servers_configured() or shutil.which("haproxy") is None:
        return None
    run = bench.run_dir(label.replace(" ", "-"))
    db_url = _postgres_schema_url(f"bench_{label.replace(' ', '_')}")
    assert db_url is not None
    _city(db_url)
    handsets = sample_numbers(db_url, 500, 7)["handsets"]
    agi_ports = [closed_port() for _ in range(engine_count)]
    balancer = HAProxy(run, closed_port(), agi_ports)
    await balancer.start()
    sim: SimulatorProcess | None = None
    try:
        sim = await SimulatorProcess.start(
            agi_url=f"agi://127.0.0.1:{balancer.port}", speed=SPEED,
            log_path=bench.log_file(run / "sim.log"),
            globals_={"HOTLINE_SPOOL_DIR": str(run / "spool")})
        env = engine_env(db_url, os.environ["HOTLINE_TEST_REDIS_URL"], sim, run, SPEED,
                         DISPATCH__ENABLED="false",
                         DIAL__RING_TIMEOUT_S=str(DialSettings().ring_timeout_s))
        with engines(stop_timeout_s=ENGINE_STOP_S) as running:
            for port in agi_ports:
                running.append(engine_process(env, port, bench.log_file(run / "engines.log")))
            for port, process in zip(agi_ports, running, strict=True):
                await listening(port, process)
            await balancer.engines_up(engine_count)
            await sim.request("operators", operators=operators(hold_s))
            cpu_before = sum(process_cpu_s(process.pid) for process in running)
            sim_cpu_before = process_cpu_s(sim.process.pid)
            results = await drive(sim, handsets, calls, rate)
            catch_up_s = await escalations_begun(db_url, [r["uniqueid"] for r in results])
            cpu_s = sum(process_cpu_s(process.pid) for process in running) - cpu_before
            sim_cpu_s = process_cpu_s(sim.process.pid) - sim_cpu_before
            client = aioredis.Redis.from_url(env["HOTLINE_TEST_REDIS_URL"])
            try:
                pops = first_pops(await stream_events(
                    client, f"{env['HOTLINE_REDIS__KEY_PREFIX']}events", "screen_pop"))
            finally:
                await client.aclose()
        # every engine stopped by SIGTERM: what they wrote in the background is stored
    finally:
        if sim is not None:
            await sim.stop()
        balancer.stop()
    calls_made = timings(results, sim.real_start)
    check_inflight_released(bench, label, run / "spool")
    replayed = await replay_left_spool(db_url, run / "spool")
    await _check_emergencies(bench, label, db_url, calls_made, pops)
    async with Stored(db_url) as stored:  # queued by the dialplan alone, adopted over AMI
        adopted = await stored.count(Call, Call.reason.like("engine\\_%", escape="\\"))
    return EnginesRun(calls_made, pops, cpu_s, sim_cpu_s, catch_up_s, adopted, replayed)


@dataclass
class EnginesRun:
    calls: list[Timing]
    pops: dict[str, float]
    cpu_s: float  # the engine processes' CPU seconds while the calls were made
    sim_cpu_s: float  # the simulator's (the PBX, the phones, the operators), meanwhile
    catch_up_s: float | None  # after the last call, until every escalation had begun
    adopted: int  # calls FastAGI never served, queued by the dialplan, adopted over AMI
    replayed: int  # orders made from the spool the engines left (calls no engine adopted)


def check_inflight_released(bench: Bench, label: str, spool: Path) -> None:
    """Engines stopped cleanly, every order and call record stored: no emergency's in-flight
    record is left for a replay (``ivr/inflight_orders.py``)."""
    left = [path.name for path in (spool / "inflight").rglob("*.json")]
    bench.expect(f"{label}: in-flight records left after a clean stop", 0, len(left))


async def replay_left_spool(db_url: str, spool: Path) -> int:
    """Replay what the dialplan spooled and no engine replayed before they stopped, as the
    next engine start would; the number of orders it made."""
    engine = make_async_engine(db_url, pool_size=2)
    try:
        report = await replay_spool(async_sessionmaker_for(engine), spool,
                                    IvrSettings().local_area_code, datetime.now(UTC))
    finally:
        await engine.dispose()
    return len(report.created)


def process_cpu_s(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def escalations_begun(db_url: str, uniqueids: list[str]) -> float | None:
    """Seconds until every call's emergency order has its family escalation begun (the
    engines catch up after the burst), or None if that took over ESCALATION_CATCH_UP_S."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with Stored(db_url) as stored:
        while loop.time() - started < ESCALATION_CATCH_UP_S:
            orders = await stored.emergency_orders_of_calls(uniqueids)
            begun = await stored.orders_with_event(orders.values(), ESCALATION_BEGUN)
            if len(orders) == len(uniqueids) and len(begun) == len(orders):
                return loop.time() - started
            await asyncio.sleep(1.0)
    return None


async def _check_emergencies(bench: Bench, label: str, db_url: str, calls: list[Timing],
                             pops: dict[str, float]) -> None:
    uniqueids = [c.uniqueid for c in calls]
    bench.expect(f"{label}: emergencies that reached the Queue", len(calls),
                 sum(1 for c in calls if c.answered_to_queue_ms is not None))
    async with Stored(db_url) as stored:
        orders = await _check_stored(bench, label, stored, uniqueids, pops)
        bench.missing(f"{label}: queue entries", uniqueids,
                      await stored.queue_entries(uniqueids))
        bench.missing(f"{label}: family escalations begun", orders.values(),
                      await stored.orders_with_event(orders.values(), ESCALATION_BEGUN))


async def _check_stored(bench: Bench, label: str, stored: Stored, uniqueids: list[str],
                        pops: dict[str, float]) -> dict[str, int]:
    """Each emergency's screen pop, its order (once) and its call record pointing to it;
    returns the orders by call."""
    bench.missing(f"{label}: screen pops in Redis", uniqueids, pops)
    orders = await stored.emergency_orders_of_calls(uniqueids)
    bench.missing(f"{label}: emergency orders", uniqueids, orders)
    bench.once_each(f"{label}: emergency orders", await stored.orders_of_calls(uniqueids))
    bench.missing(f"{label}: call records pointing to their order", uniqueids,
                  await stored.call_records(uniqueids, with_their_order=True))
    return orders


async def _bare_run(bench: Bench, label: str, calls: int, rate: float | None, hold_s: float
                    ) -> list[Timing]:
    run = bench.run_dir(label.replace(" ", "-"))
    city = f"sqlite:///{run / 'hotline.sqlite3'}"  # for its handset numbers only
    _city(city)
    handsets = sample_numbers(city, 500, 7)["handsets"]
    bare = BareFastAgi(BARE_EMERGENCY)
    port = await bare.start()
    try:
        sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{port}", speed=SPEED,
                                           log_path=bench.log_file(run / "sim.log"))
        try:
            await sim.request("operators", operators=operators(hold_s))
            results = await drive(sim, handsets, calls, rate)
        finally:
            await sim.stop()
    finally:
        await bare.close()
    await bench.no_tasks_left(f"{label} run")
    calls_made = timings(results, sim.real_start)
    bench.expect(f"{label}: sessions served", calls, bare.sessions)
    bench.expect(f"{label}: calls that reached the Queue", calls,
                 sum(1 for c in calls_made if c.answered_to_queue_ms is not None))
    return calls_made


async def _run(bench: Bench, calls: int, hold_s: float, burst: int) -> None:
    steady_from = int(RATE_PER_S * hold_s)
    if not 0 <= steady_from < calls:
        raise ValueError(f"{calls} calls do not outlast the ramp-up of {steady_from}")
    bare = await _bare_run(bench, "bare FastAGI", calls, RATE_PER_S, hold_s)
    steady, pops = await _engine_run(bench, "engine", calls, RATE_PER_S, hold_s)
    bare_burst = await _bare_run(bench, "bare FastAGI burst", burst, None, hold_s)
    # as deployed, an engine process of its own behind HAProxy: in this process the engine
    # shares its event loop with the driver's 500 requests and their results; in this
    # process only where PostgreSQL, Redis or HAProxy are missing
    burst_run = await _engines_run(bench, "burst 1 engine", 1, burst, None, hold_s)
    if burst_run is not None:
        in_burst, burst_pops = burst_run.calls, burst_run.pops
        burst_where = "one engine process behind HAProxy, PostgreSQL + Redis"
    else:
        in_burst, burst_pops = await _engine_run(bench, "burst", burst, None, hold_s,
                                                 servers=True)
        burst_where = "in the benchmark's process, " + (
            "PostgreSQL + Redis" if _servers_configured() else "SQLite + embedded Redis")
    lean_burst = await _lean_burst(bench, burst)
    disaster_rate = DISASTER_CALLS / DISASTER_WINDOW_S
    bare_disaster = await _bare_run(bench, "bare FastAGI disaster", DISASTER_CALLS,
                                    disaster_rate, DISASTER_HOLD_S)
    disaster: dict[str, Any] = {
        "each call talks s": DISASTER_HOLD_S,
        **figures("baseline, bare FastAGI", bare_disaster, None, 0)}
    for count, calls_in_window in DISASTER_RUNS:
        ran = await _engines_run(bench, f"disaster {count} engines", count, calls_in_window,
                                 calls_in_window / DISASTER_WINDOW_S, DISASTER_HOLD_S)
        if ran is None:
            break
        label = (f"{count} engine process{'es' if count > 1 else ''} behind HAProxy, "
                 f"{calls_in_window:,} calls")
        disaster.update(figures(label, ran.calls, ran.pops, 0))
        disaster[f"{label}: engines' CPU ms per call"] = 1000 * ran.cpu_s / calls_in_window
        disaster[f"{label}: simulator's CPU ms per call"] = (
            1000 * ran.sim_cpu_s / calls_in_window)
        disaster[f"{label}: calls FastAGI never served (adopted over AMI)"] = ran.adopted
        disaster[f"{label}: orders made from the dialplan's spool after the run"] = ran.replayed
        disaster[f"{label}: every escalation begun, s after the last call"] = (
            "not within 300 s" if ran.catch_up_s is None else round(ran.catch_up_s, 1))
    else:
        disaster["engine's storage"] = "PostgreSQL + Redis"
    if "engine's storage" not in disaster:  # no servers or no HAProxy: one engine in-process
        one, one_pops = await _engine_run(bench, "disaster", DISASTER_CALLS, disaster_rate,
                                          DISASTER_HOLD_S, servers=True)
        disaster["engine's storage"] = ("PostgreSQL + Redis" if _servers_configured()
                                        else "SQLite + embedded Redis")
        disaster.update(figures("engine, in the benchmark's process", one, one_pops, 0))
    disaster["goal p99"] = "< 1 s, a screen pop and an emergency order for every call"
    bench.report(f"emergencies: {DISASTER_CALLS} arriving within {DISASTER_WINDOW_S:g} s",
                 disaster)
    in_progress = int(RATE_PER_S * hold_s)
    bench.report(f"emergencies: handset calls at {in_progress} concurrent", {
        "arrivals per s, each call up s": f"{RATE_PER_S:g}, {hold_s:g}",
        **figures("baseline, bare FastAGI", bare, None, steady_from),
        **figures("engine", steady, pops, steady_from),
        **figures(f"baseline, bare FastAGI, {burst} in the same instant", bare_burst, None, 0),
        f"engine, {burst} in the same instant: engine": burst_where,
        **figures(f"engine, {burst} in the same instant", in_burst, burst_pops, 0),
        f"goal p99, {burst} in the same instant": "< 1 s on PostgreSQL and Redis",
        **lean_burst,
        "note": "PBX times: answer stamped by the simulator, queue = Queue app start; "
                "screen pop = its Redis entry time; negative: the pop came first",
        "goal p99": f"< 200 ms each, at {in_progress} concurrent calls",
    })


def run(bench: Bench, calls: int = CALLS, hold_s: float = HOLD_REAL_S,
        burst: int = BURST) -> None:
    asyncio.run(_run(bench, calls, hold_s, burst))


if __name__ == "__main__":
    standalone("emergency", run)
