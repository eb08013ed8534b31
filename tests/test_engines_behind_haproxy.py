"""Wire-level, on PostgreSQL and Redis: two engine processes behind HAProxy, run with the
shipped ``asterisk_conf/haproxy-fastagi.cfg``. A burst of handset emergencies is shared
between the engines; one engine is then killed with SIGKILL, and the next burst is served
whole by the engine left (the connections HAProxy could not make to the dead one are
redispatched), every caller queued as an emergency. Every call of both bursts has its
emergency order (once) and its queue entry. The same holds when the SIGKILL lands while a
burst is still arriving and the killed engine's family escalations are under way."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatch.citygen import generate_city, sample_numbers
from dispatch.db import upgrade
from dispatch.models import QueueCall, ServiceType, WorkOrder
from dispatch.phones import national
from ivr.demo.simproc import SimulatorProcess
from tests.callstack import OPERATORS, CallStack, server_backends, until
from tests.haproxy import HAProxy
from tests.ports import closed_port
from tests.processes import engine_env, engine_process, engines, listening
from tests.test_metrics import scrape, total

SPEED = 30.0
ENGINE_START_S = 60.0
BURST = 16
KILL_BURST = 30
ARRIVAL_GAP_S = 1.0  # simulated seconds between the burst's calls: 30 a second

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


async def test_two_engines_share_the_calls_and_one_survives_the_other(tmp_path: Path
                                                                       ) -> None:
    with server_backends(tmp_path) as (db_url, redis_url):
        await _two_engines(tmp_path, db_url, redis_url)


async def _burst(sim: SimulatorProcess, handsets: list[str]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(sim.call({
        "number": national(number), "name": "", "to": "12349", "context": "from-pstn",
        "script": [], "hangup_after": None}) for number in handsets)))


async def _served(metrics_port: int) -> float:
    return total(await scrape(metrics_port), "hotline_calls_total", flow="inbound",
                 ended="served")


async def _served_at_least(metrics_port: int, count: float) -> float | None:
    served = await _served(metrics_port)
    return served if served >= count else None


@dataclass
class TwoEngines:
    sim: SimulatorProcess
    running: list[subprocess.Popen[bytes]]
    metrics_ports: list[int]
    handsets: list[str]
    stored: CallStack  # for poll()
    log: Path


@contextlib.asynccontextmanager
async def two_engines(tmp_path: Path, db_url: str, redis_url: str, handsets: int
                      ) -> AsyncIterator[TwoEngines]:
    """Two engine processes behind HAProxy on a generated city, the simulator in front."""
    upgrade(db_url)
    generate_city(db_url, elders=300, vendors=5, seed=7)
    numbers = sample_numbers(db_url, handsets, 7)["handsets"]
    assert len(numbers) == handsets
    agi_ports, metrics_ports = [closed_port(), closed_port()], [closed_port(), closed_port()]
    balancer = HAProxy(tmp_path, closed_port(), agi_ports)
    await balancer.start()
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{balancer.port}", speed=SPEED,
                                       log_path=tmp_path / "sim.log",
                                       globals_={"HOTLINE_SPOOL_DIR": str(tmp_path / "spool")})
    env = engine_env(db_url, redis_url, sim, tmp_path, SPEED, METRICS__ENABLED="true")
    log = tmp_path / "engines.log"
    try:
        await sim.request("operators", operators=OPERATORS)
        with engines() as running:
            for agi_port, metrics_port in zip(agi_ports, metrics_ports, strict=True):
                running.append(engine_process(
                    {**env, "HOTLINE_METRICS__PORT": str(metrics_port)}, agi_port, log))
            # an engine that exits fails at once, its log named; a slow start under a busy
            # suite gets a minute
            for agi_port, metrics_port, process in zip(agi_ports, metrics_ports, running,
                                                       strict=True):
                for port in (agi_port, metrics_port):
                    await listening(port, process, timeout_s=ENGINE_START_S)
            await balancer.engines_up(2)
            yield TwoEngines(sim, running, metrics_ports, numbers,
                             CallStack(db_url, None, None, None),  # type: ignore[arg-type]
                             log)
    finally:
        await sim.stop()
        balancer.stop()


async def _two_engines(tmp_path: Path, db_url: str, redis_url: str) -> None:
    async with two_engines(tmp_path, db_url, redis_url, BURST * 2) as both:
        sim, running, metrics_ports, stored = (both.sim, both.running, both.metrics_ports,
                                               both.stored)
        handsets = both.handsets
        first = await _burst(sim, handsets[:BURST])

        async def shares_of_first() -> list[float] | None:
            shares = [await _served(port) for port in metrics_ports]
            return shares if sum(shares) == BURST else None  # their flows have all ended

        shares = await until(shares_of_first, "the engines' counts of the first burst")
        # the orders of the first burst are stored before the kill (one stored in the
        # instant of a SIGKILL is the dialplan's and the spool's, not this test's)
        await stored.poll(select(WorkOrder.id).where(
            WorkOrder.service == ServiceType.EMERGENCY), lambda rows: len(rows) == BURST)
        running[0].send_signal(signal.SIGKILL)
        running[0].wait(10)
        second = await _burst(sim, handsets[BURST:])
        left_served = await until(
            lambda: _served_at_least(metrics_ports[1], shares[1] + BURST),
            "the survivor's count of the second burst")
        calls = first + second
        uniqueids = [call["uniqueid"] for call in calls]
        orders = await _orders_of(stored, uniqueids)
        entries = await _queue_entries(stored, uniqueids)
    output = both.log.read_text(errors="replace")
    assert all(share > 0 for share in shares), (shares, output)  # both took calls
    assert left_served == shares[1] + BURST, output  # the second burst, all on the survivor
    for call in calls:
        assert call["queue"] is not None and call["queue"]["priority"] == 10, call
        assert call["variables"]["HOTLINE_REASON"] == "handset_emergency", call
    assert Counter(uniqueid for (uniqueid,) in orders) == Counter(uniqueids)  # once each
    assert sorted(uniqueid for (uniqueid,) in entries) == sorted(uniqueids)


async def _orders_of(stored: CallStack, uniqueids: list[str]) -> list[Any]:
    return await stored.poll(
        select(WorkOrder.call_uniqueid).where(WorkOrder.call_uniqueid.in_(uniqueids)),
        lambda rows: len(rows) >= len(uniqueids))


async def _queue_entries(stored: CallStack, uniqueids: list[str]) -> list[Any]:
    return await stored.poll(
        select(QueueCall.uniqueid).where(QueueCall.uniqueid.in_(uniqueids),
                                         QueueCall.joined_at.is_not(None)),
        lambda rows: len(rows) >= len(uniqueids))


async def test_an_engine_killed_during_a_burst_loses_no_emergency(tmp_path: Path) -> None:
    """SIGKILL lands on one engine while a burst is still arriving and its family
    escalations are under way: every call still has its emergency order (once) and its
    queue entry, no family member is rung twice for the same order, and the engine left
    serves the next caller without a restart."""
    with server_backends(tmp_path) as (db_url, redis_url):
        async with two_engines(tmp_path, db_url, redis_url, KILL_BURST + 1) as both:
            await _killed_mid_burst(both)


async def _killed_mid_burst(both: TwoEngines) -> None:
    burst = [asyncio.create_task(both.sim.request("call", delay=index * ARRIVAL_GAP_S, caller={
        "number": national(number), "name": "", "to": "12349", "context": "from-pstn",
        "script": [], "hangup_after": None})) for index, number in enumerate(
            both.handsets[:KILL_BURST])]
    await until(lambda: _served_at_least(both.metrics_ports[0], 3),
                "the first engine serving the burst")
    both.running[0].send_signal(signal.SIGKILL)
    both.running[0].wait(10)
    assert not all(task.done() for task in burst)  # the burst was still arriving
    calls = list(await asyncio.gather(*burst))
    after = await _burst(both.sim, both.handsets[KILL_BURST:])  # the survivor goes on
    assert after[0]["variables"]["HOTLINE_REASON"] == "handset_emergency", after
    uniqueids = [call["uniqueid"] for call in calls + after]
    orders = await _orders_of(both.stored, uniqueids)
    entries = await _queue_entries(both.stored, uniqueids)
    output = both.log.read_text(errors="replace")
    assert Counter(uniqueid for (uniqueid,) in orders) == Counter(uniqueids), output
    assert sorted(uniqueid for (uniqueid,) in entries) == sorted(uniqueids), output
    rung = Counter((call["variables"].get("HOTLINE_ORDER_ID"),
                    call["variables"].get("HOTLINE_CONTACT_ID"))
                   for call in (await both.sim.request("originated"))["originated"]
                   if call["context"] == "hotline-family-alert")
    assert rung and max(rung.values()) == 1, rung
