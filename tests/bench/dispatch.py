"""Dispatch by phone: orders dispatched per second and the engine's added latency from an
order's commit to its first Originate leaving the engine, with 1,000 orders committed in a burst.

The engine runs against the simulator (fast time: vendors answer and press 1 at once). Times
are stamped inside the engine process: just after ``create_order`` committed, and when the
dispatcher calls the AMI client's ``originate``. Baselines from the same run, same AMI client,
same simulator, same database: one Originate round trip with no database or planning behind
it, and one attempt row inserted and committed.

Every order committed in the burst and one at a time must have had its first Originate, be
accepted, and have exactly one accepted attempt; every order of the backlog must still have its
scheduled attempt; the simulator must have seen one Originate per attempt dialled plus the
round trips; every baseline attempt row must be stored. Each storage stack runs on a database
of its own.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from dispatch import outbound
from dispatch.citygen import generate_city
from dispatch.db import upgrade
from dispatch.models import (
    CallPurpose,
    Elder,
    OrderStatus,
    OutboundCall,
    OutboundState,
    ServiceType,
    WorkOrder,
)
from dispatch.orders import create_order
from dispatch.stats import percentile
from ivr.config import load_settings
from ivr.demo.simproc import SimulatorProcess
from ivr.engine import Engine
from tests.bench.calls import FAST
from tests.bench.checks import DRAIN_S, Bench, Stored, standalone
from tests.callstack import backend_urls
from tests.dispatch_world import rank_vendors
from tests.storage import PG_ENV, _pg_admin

ORDERS = 1000
VENDORS = 200
ROUND_TRIPS = 500
SINGLES = 100
ACCEPT = {"answer": "answer", "ring_s": 1.0, "script": [{"press": "1", "delay": 1.0}],
          "hangup_after": None}
BUSY = {"answer": "busy", "ring_s": 0.0}
BASELINE_NUMBER = "13900000000"  # no vendor's: the simulator answers it busy at once
SERVICES = (ServiceType.MEAL, ServiceType.HOUSEKEEPING, ServiceType.HEALTH)
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)  # baseline attempts no engine ever dials


def _ms(values: list[float]) -> dict[str, float]:
    return {f"p{q} ms": percentile(values, q) * 1000 for q in (50, 95, 99)}


class Stamps:
    """Commit and first-Originate times per order, taken inside the engine process."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.committed: dict[int, float] = {}
        self.sent: dict[int, float] = {}
        self.waiting: dict[int, asyncio.Event] = {}
        self._original = engine.ami.originate

    def __enter__(self) -> Stamps:
        self.engine.ami.originate = self._stamped
        return self

    def __exit__(self, *_: object) -> None:
        self.engine.ami.originate = self._original

    async def _stamped(self, **fields: Any) -> Any:
        order_id = int(fields["variables"]["HOTLINE_ORDER_ID"])
        self.sent.setdefault(order_id, time.perf_counter())
        if order_id in self.waiting:
            self.waiting.pop(order_id).set()
        return await self._original(**fields)

    async def commit(self, elder_id: int, service: ServiceType) -> int:
        """Commit an order as the inbound flow does (an urgent write: the caller waits for
        it) and hand it to the dispatcher."""
        ctx = self.engine.context
        assert ctx is not None and ctx.dispatcher is not None
        async with ctx.urgent_writing() as session:
            order = await create_order(session, elder_id=elder_id, service=service,
                                       source="phone", call_uniqueid=None,
                                       requested_by="elder", at=ctx.now())
        self.committed[order.id] = time.perf_counter()
        ctx.dispatcher.order_created(order.id)
        return order.id

    def latencies(self, orders: list[int]) -> list[float]:
        return [self.sent[o] - self.committed[o] for o in orders if o in self.sent]

    def peak_pending(self, orders: list[int]) -> int:
        """Most orders committed and not yet offered (no Originate sent) at one moment."""
        moments = sorted([(self.committed[o], 1) for o in orders]
                         + [(self.sent[o], -1) for o in orders if o in self.sent])
        pending = peak = 0
        for _, step in moments:
            pending += step
            peak = max(peak, pending)
        return peak


async def _burst(stamps: Stamps, elders: list[int]) -> tuple[dict[str, Any], list[int]]:
    """``ORDERS`` orders committed at once, as by as many calls ending together; every one
    accepted by a vendor. A commit that fails (as a call's would, sending it to a human) is
    counted, not raised: the checks report the orders missing."""
    started_wall, started = time.time(), time.perf_counter()
    outcomes = await asyncio.gather(*(
        stamps.commit(elders[i % len(elders)], SERVICES[i % 3]) for i in range(ORDERS)),
        return_exceptions=True)
    committed_s = time.perf_counter() - started
    orders = [o for o in outcomes if isinstance(o, int)]
    failed = [o for o in outcomes if isinstance(o, Exception)]
    accepted, last = await _wait_accepted(stamps.engine, set(orders), timeout_s=150.0)
    latencies = stamps.latencies(orders)
    elapsed = (last - started_wall) if last else float("nan")
    return {
        "orders committed": len(orders),
        "commits failed": f"{len(failed)}: {type(failed[0]).__name__}: {failed[0]}"[:200]
        if failed else 0,
        "all committed within s": committed_s,
        "most pending at once (not offered)": stamps.peak_pending(orders),
        "first Originate sent for": len(latencies),
        **{f"commit -> Originate sent {k}": v for k, v in _ms(latencies).items()},
        "orders accepted": accepted,
        "first commit -> last acceptance s": elapsed,
        "orders dispatched (accepted) per s": accepted / elapsed if accepted else 0.0,
    }, orders


async def _one_at_a_time(stamps: Stamps, elders: list[int]) -> tuple[dict[str, Any], list[int]]:
    """``SINGLES`` orders, each committed once the previous one's Originate left."""
    orders = []
    for i in range(SINGLES):
        ready = asyncio.Event()
        order_id = await stamps.commit(elders[-1 - i], SERVICES[i % 3])
        stamps.waiting[order_id] = ready
        if order_id not in stamps.sent:
            await asyncio.wait_for(ready.wait(), 30.0)
        orders.append(order_id)
    await _wait_accepted(stamps.engine, set(orders), timeout_s=30.0)
    return {"orders": len(orders),
            **{f"commit -> Originate sent {k}": v
               for k, v in _ms(stamps.latencies(orders)).items()}}, orders


async def _backlog(engine: Engine, elders: list[int], vendor_id: int, phone: str
                   ) -> list[int]:
    """``ORDERS`` orders pending in the schedule: each waiting for a retry an hour from now,
    as after a busy hour. Returns their ids."""
    ctx = engine.context
    assert ctx is not None and ctx.dispatcher is not None
    due = ctx.now() + timedelta(hours=1)
    entries, orders = [], []
    for i in range(ORDERS):
        async with ctx.writing() as session:
            order = await create_order(session, elder_id=elders[i % len(elders)],
                                       service=SERVICES[i % 3], source="phone",
                                       call_uniqueid=None, requested_by="elder", at=ctx.now())
            await session.execute(update(WorkOrder).where(WorkOrder.id == order.id)
                                  .values(status=OrderStatus.DISPATCHING))
            attempt_id = await outbound.schedule(
                session, purpose=CallPurpose.VENDOR_OFFER, order_id=order.id, seq=1,
                vendor_id=vendor_id, number_e164=phone, tries=2, due_at=due)
        assert attempt_id is not None
        entries.append((attempt_id, due.timestamp()))
        orders.append(order.id)
    await ctx.dispatcher.schedule.add(entries)
    return orders


async def _wait_accepted(engine: Engine, orders: set[int], timeout_s: float
                         ) -> tuple[int, float | None]:
    """(orders accepted, wall time of the last acceptance) once all are or time ran out."""
    assert engine.context is not None
    low, high = min(orders), max(orders)
    query = (select(func.count(), func.max(WorkOrder.accepted_at))
             .where(WorkOrder.id.between(low, high), WorkOrder.status == OrderStatus.ACCEPTED))
    deadline = time.perf_counter() + timeout_s
    while True:
        async with engine.context.sessions() as session:
            count, last = (await session.execute(query)).one()
        if count >= len(orders) or time.perf_counter() > deadline:
            if isinstance(last, str):  # SQLite hands an aggregate back as text
                last = datetime.fromisoformat(last).replace(tzinfo=UTC)
            return int(count), last.timestamp() if last is not None else None
        await asyncio.sleep(0.2)


async def _originate_round_trips(engine: Engine) -> list[float]:
    """Originate -> OriginateResponse through the engine's AMI client, nothing behind it."""
    dial = engine.settings.dial
    seconds = []
    for i in range(ROUND_TRIPS):
        started = time.perf_counter()
        outcome = await engine.ami.originate(
            channel=dial.vendor.format(number=BASELINE_NUMBER), context="hotline-vendor-offer",
            exten="s", priority=1, caller_id=dial.caller_id,
            timeout_ms=int(dial.ring_timeout_s * 1000), action_id=f"bench-rt-{i}",
            variables={"HOTLINE_ATTEMPT_ID": "0", "HOTLINE_ORDER_ID": "0"})
        seconds.append(time.perf_counter() - started)
        assert not outcome.answered
    return seconds


async def _attempt_inserts(engine: Engine, order_id: int, vendor_id: int) -> list[float]:
    """One scheduled attempt row inserted and committed through the engine's write path."""
    ctx = engine.context
    assert ctx is not None
    seconds = []
    for seq in range(1000, 1000 + ROUND_TRIPS):
        started = time.perf_counter()
        async with ctx.writing() as session:
            await outbound.schedule(
                session, purpose=CallPurpose.QUALITY_CALLBACK, order_id=order_id, seq=seq,
                vendor_id=vendor_id, number_e164="+86" + BASELINE_NUMBER, tries=1,
                due_at=FAR_FUTURE)
        seconds.append(time.perf_counter() - started)
    return seconds


async def _scenario(bench: Bench, label: str, db_url: str, redis_url: str, folder: Path
                    ) -> None:
    upgrade(db_url)
    generate_city(db_url, elders=2000, vendors=VENDORS, seed=11)
    vendors = rank_vendors(db_url)
    settings = load_settings(
        None, database={"url": db_url},
        redis={"url": redis_url, "embedded_path": str(folder / "redis.db"),
               "key_prefix": f"benchd{uuid.uuid4().hex[:8]}:"},
        agi={"port": 0}, ami={"enabled": False}, clock={"speed": 1.0},
        spool={"dir": str(folder / "spool")}, alarms={"spool_dir": str(folder / "alarms")},
        dispatch={"trunk_channels": 10 * ORDERS, "vendor_channels": 10 * ORDERS,
                  "rank_refresh_s": 1e9},
    )
    engine = Engine(settings)
    await engine.start(migrate=False, connect_ami=False)
    sim: SimulatorProcess | None = None
    try:
        sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{engine.agi_port}",
                                           speed=FAST, log_path=bench.log_file(folder / "sim.log"))
        await sim.connect_engine(engine)
        await sim.request("phones", phones={v.phone: ACCEPT for v in vendors}
                          | {BASELINE_NUMBER: BUSY})
        assert engine.context is not None
        async with engine.context.sessions() as session:
            elders = list(await session.scalars(
                select(Elder.id).where(Elder.county_code.is_not(None)).order_by(Elder.id)))
        with Stamps(engine) as stamps:
            figures, burst = await _burst(stamps, elders)
            last = vendors[-1]
            backlog = await _backlog(engine, elders, last.id, "+86" + last.phone.lstrip("0"))
            singles_figures, one_by_one = await _one_at_a_time(stamps, elders)
            singles = {"orders pending in the schedule": len(backlog), **singles_figures}
        first_order = min(stamps.committed)
        round_trips = await _originate_round_trips(engine)
        inserts = await _attempt_inserts(engine, first_order, vendors[0].id)
        originated = await sim.request("stats")
    finally:
        await engine.stop(grace_s=DRAIN_S)
        if sim is not None:
            await sim.stop()
    await bench.no_tasks_left(f"{label}: engine")
    bench.expect(f"{label}: burst orders with their first Originate", len(burst),
                 len(stamps.latencies(burst)))
    await _check_orders(bench, label, db_url, burst, one_by_one, backlog, first_order,
                        originated.get("originates"))
    figures["simulator Originates"] = originated.get("originates")
    bench.report(f"dispatch: {ORDERS:,} orders committed at once, {VENDORS} vendors, {label}",
                 figures)
    bench.report(f"dispatch: one order at a time with {ORDERS:,} orders pending, {label}",
                 singles)
    baseline = {**{f"Originate round trip {k}": v for k, v in _ms(round_trips).items()},
                **{f"attempt insert+commit {k}": v for k, v in _ms(inserts).items()}}
    bench.report(f"dispatch baseline, same run: AMI client and database alone, {label}",
                 baseline)
    trip, insert = baseline["Originate round trip p50 ms"], baseline["attempt insert+commit p50 ms"]
    bench.report(f"dispatch: ratios of p50s, {label}", {
        "burst added / Originate round trip": figures["commit -> Originate sent p50 ms"] / trip,
        "one at a time added / Originate round trip":
            singles["commit -> Originate sent p50 ms"] / trip,
        "one at a time added / attempt insert": singles["commit -> Originate sent p50 ms"] / insert,
        "goal commit -> Originate p99": "< 100 ms at 1,000 pending orders",
    })


async def _check_orders(bench: Bench, label: str, db_url: str, burst: list[int],
                        singles: list[int], backlog: list[int], first_order: int,
                        originates: int | None) -> None:
    async with Stored(db_url) as stored:
        for what, orders in (("burst", burst), ("one at a time", singles)):
            bench.expect(f"{label}: {what}: orders", ORDERS if what == "burst" else SINGLES,
                         len(orders))
            accepted = await stored.attempts(orders, purpose=CallPurpose.VENDOR_OFFER,
                                             state=OutboundState.DONE, outcome="accepted")
            bench.missing(f"{label}: {what}: orders with their accepted attempt", orders,
                          accepted)
            bench.once_each(f"{label}: {what}: accepted attempts", accepted)
            bench.expect(f"{label}: {what}: orders accepted", len(orders), await stored.count(
                WorkOrder, WorkOrder.id.in_(orders), WorkOrder.status == OrderStatus.ACCEPTED))
        bench.missing(f"{label}: backlog orders with their scheduled attempt", backlog,
                      await stored.attempts(backlog, purpose=CallPurpose.VENDOR_OFFER,
                                            state=OutboundState.SCHEDULED))
        bench.expect(f"{label}: baseline attempt rows", ROUND_TRIPS, await stored.count(
            OutboundCall, OutboundCall.order_id == first_order,
            OutboundCall.purpose == CallPurpose.QUALITY_CALLBACK,
            OutboundCall.due_at == FAR_FUTURE))
        dialled = await stored.count(OutboundCall, OutboundCall.claimed_at.is_not(None))
        bench.expect(f"{label}: simulator Originates (attempts dialled + round trips)",
                     dialled + ROUND_TRIPS, originates or 0)


async def _run(bench: Bench) -> None:
    folder = bench.run_dir("sqlite")
    db_url, _, _ = backend_urls("embedded", folder)
    await _scenario(bench, "SQLite + embedded Redis", db_url, "", folder)
    if not (os.environ.get(PG_ENV) and os.environ.get("HOTLINE_TEST_REDIS_URL")):
        bench.report("dispatch: PostgreSQL + Redis", {
            "skipped": f"{PG_ENV} and HOTLINE_TEST_REDIS_URL are not set"})
        return
    folder = bench.run_dir("pg")
    pg_url, redis_url, schema = backend_urls("servers", folder)
    try:
        await _scenario(bench, "PostgreSQL + Redis", pg_url, redis_url or "", folder)
    finally:
        _pg_admin(os.environ[PG_ENV], f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run(bench: Bench) -> None:
    asyncio.run(_run(bench))


if __name__ == "__main__":
    standalone("dispatch", run)
