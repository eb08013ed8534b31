"""Caring calls in bulk: 10,000 elders due in one morning window on a 60-channel trunk, in the
simulator's fast time (engine clock and simulator at ``SPEED`` simulated seconds a second).

The engine's clock starts at 08:50 local on the day after the run's own date. The elders'
check-in window opens at 08:00, before the allowed hours (09:00-20:00), so every round is due
at once and must wait for 09:00. Every elder answers and presses 1; each lets the phone ring
for their own time between ``RING_S`` - ``RING_SPREAD_S`` / 2 and ``RING_S`` +
``RING_SPREAD_S`` / 2 (spread evenly over the elders). With one ring time for all, every
call would last the same and the trunk's hangups would come in waves, one every call
length: a priority call needing a line just after a wave would wait for the next one.

Measured:
- the trunk's use while caring calls were still waiting (from the first call to the last
  call placed): line-seconds held / (trunk lines x that time), from the simulator's record
  of every call it placed (the emergencies' call-backs and family alerts hold lines too),
  and the caring calls' own part of it from their attempts' rows (engine-clock times, from
  the claim to the hangup: an answered call holds its line until then);
- the time to finish, against the ideal of calls x mean call time / trunk lines;
- emergency call-backs (``EmergencyWatch.call_back`` to the AMI Originate leaving the
  engine, both stamped in the engine process): ``CALLBACKS`` before 09:00 on the idle engine,
  then as many while the campaign runs; the goal is under 1 s added at p99;
- calls placed outside the allowed hours (goal: none).

Checks: every round ended with the elder well, one call each; no more caring calls on lines
at once than their share of the trunk; every call-back placed and on its order's timeline;
the simulator saw one Originate per call placed; no ERROR logged; no task left running.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

from dispatch.citygen import generate_city
from dispatch.db import upgrade
from dispatch.models import (
    CallPurpose,
    CareKind,
    CarePlan,
    CareRound,
    Elder,
    OrderEvent,
    OutboundCall,
    RoundState,
    ServiceType,
)
from dispatch.open_alarms import CALLBACK_KINDS, RETRY_EVENT
from dispatch.orders import create_order
from dispatch.phones import national
from dispatch.quality import callback_number
from dispatch.stats import most_at_once, percentile
from ivr.clock import ScaledClock
from ivr.config import load_settings
from ivr.demo.simproc import SimulatorProcess
from ivr.dialplan_contract import ChannelVar, Context
from ivr.engine import Engine
from tests.bench.checks import DRAIN_S, Bench, Stored, standalone
from tests.callstack import backend_urls
from tests.sim_phones import answers_and_presses

ELDERS = 10_000
TRUNK = 60
RESERVE = 2  # lines caring calls leave free ([care] reserve_channels, its default)
SPEED = 10.0
CALLBACKS = 40
RING_S = 8.0  # the mean ring time before an elder answers
RING_SPREAD_S = 8.0
EXPECTED_CALL_S = 30.0  # engine seconds a check-in holds its line (ring, greeting, key, thanks)

BUSY = {"answer": "busy", "ring_s": 0.0}
TZ = ZoneInfo("Asia/Shanghai")
ALLOWED = (clock_time(9, 0), clock_time(20, 0))
CLOCK_START = clock_time(8, 50)
CALLBACK_GAP_S = 3000.0  # engine seconds: each measured order's first call-back is due at
# once (its order is back-dated by this much), the next one long after the run
STALL_S = 120.0  # real seconds without a round ending before the run is given up


def well(index: int) -> dict[str, Any]:
    """The ``index``-th elder's phone: answered after their own ring time, then key 1."""
    share = (index * 0.6180339887) % 1.0  # evenly spread, in no order of the elders
    return answers_and_presses(("1", 2.0), ring_s=RING_S + RING_SPREAD_S * (share - 0.5))


class CallbackStamps:
    """When each emergency call-back was asked for and when its Originate left the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.asked: dict[int, float] = {}
        self.sent: dict[int, float] = {}
        self.outcomes: dict[int, str] = {}
        self._original = engine.ami.originate

    def __enter__(self) -> CallbackStamps:
        self.engine.ami.originate = self._stamped
        return self

    def __exit__(self, *_: object) -> None:
        self.engine.ami.originate = self._original

    async def _stamped(self, **fields: Any) -> Any:
        if fields.get("context") == Context.EMERGENCY_CALLBACK:
            order_id = int(fields["variables"][ChannelVar.ORDER_ID])
            self.sent.setdefault(order_id, time.perf_counter())
        return await self._original(**fields)

    async def call_back(self, elder_id: int) -> int:
        """Open an unattended emergency for the elder and call it back as the watch does."""
        ctx = self.engine.context
        watch = self.engine.emergency_watch
        assert ctx is not None and watch is not None
        async with ctx.writing() as session:
            order = await create_order(
                session, elder_id=elder_id, service=ServiceType.EMERGENCY, source="handset",
                call_uniqueid=None, requested_by="elder",
                at=ctx.now() - timedelta(seconds=CALLBACK_GAP_S))
        self.asked[order.id] = time.perf_counter()
        self.outcomes[order.id] = await watch.call_back(order.id)
        return order.id

    def delays_ms(self, orders: list[int]) -> list[float]:
        return [(self.sent[o] - self.asked[o]) * 1000 for o in orders if o in self.sent]


def _local(at: datetime) -> datetime:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(TZ)


def _day_start() -> datetime:
    """08:50 local on the day after today (the run's own date: no date is fixed)."""
    day = datetime.now(TZ).date() + timedelta(days=1)
    return datetime.combine(day, CLOCK_START, tzinfo=TZ)


async def _callable_elders(engine: Engine, count: int) -> list[tuple[int, str, str]]:
    """(elder id, number a caring call dials, number an emergency call-back dials), national,
    of the first ``count`` elders whose numbers no other chosen elder shares (a household's
    landline would ring for two elders with two scripts)."""
    assert engine.context is not None
    chosen: list[tuple[int, str, str]] = []
    used: set[str] = set()
    async with engine.context.sessions() as session:
        for elder_id in (await session.scalars(select(Elder.id).order_by(Elder.id))).all():
            care = await callback_number(session, elder_id)
            back = await callback_number(session, elder_id, CALLBACK_KINDS)
            if care is None or back is None or {care, back} & used:
                continue
            used |= {care, back}
            chosen.append((elder_id, national(care), national(back)))
            if len(chosen) == count:
                break
    return chosen


async def _plan_check_ins(engine: Engine, elders: list[int]) -> None:
    """A daily check-in for each elder, its window open from 08:00 (before the allowed
    hours: the calls must wait for 09:00)."""
    assert engine.context is not None
    async with engine.context.writing() as session:
        await session.execute(insert(CarePlan), [
            {"elder_id": elder_id, "kind": CareKind.CHECK_IN, "window_start": clock_time(8, 0),
             "window_end": clock_time(12, 0), "weekdays": 127, "created_at": datetime.now(UTC)}
            for elder_id in elders])
        await session.commit()


async def _rounds_ended(engine: Engine) -> int:
    assert engine.context is not None
    async with engine.context.sessions() as session:
        states = Counter((await session.scalars(select(CareRound.state))).all())
    return sum(n for state, n in states.items()
               if state not in (RoundState.DUE, RoundState.CALLING))


async def _campaign(stamps: CallbackStamps, emergency_elders: list[int], rounds: int,
                    speed: float) -> list[int]:
    """Wait for every round to end, calling back one emergency at a time, spread over the
    campaign's expected length; returns the call-backs' orders. Gives up after ``STALL_S``
    with no round ending."""
    engine = stamps.engine
    expected_s = rounds * EXPECTED_CALL_S / (TRUNK - RESERVE) / speed
    pause_s = min(1.0, max(0.05, expected_s / (2 * len(emergency_elders) + 2)))
    orders: list[int] = []
    ended, moved_at = 0, time.perf_counter()
    while ended < rounds:
        if len(orders) < len(emergency_elders) and ended > 0:
            orders.append(await stamps.call_back(emergency_elders[len(orders)]))
        await asyncio.sleep(pause_s)
        now_ended = await _rounds_ended(engine)
        if now_ended > ended:
            ended, moved_at = now_ended, time.perf_counter()
        elif time.perf_counter() - moved_at > STALL_S:
            break
    return orders


def _held(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Line-seconds the spans hold between ``start`` and ``end``."""
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)


def _line_use(calls: list[tuple[datetime, datetime]],
              trunk_calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The trunk's use while caring calls were still waiting (from the first caring call
    placed to the last), from the simulator's record of every call it placed (caring calls,
    call-backs and family alerts alike: every one holds a trunk line from its Originate until
    it is over), and the caring calls' own share from the attempts' rows; the time to
    finish; the most lines at once."""
    caring = [c for c in trunk_calls if c["context"] == Context.CARE_CALL]
    first = min(c["at"] for c in caring)
    last_start = max(c["at"] for c in caring)
    ended = max((c["ended_at"] or c["at"]) for c in trunk_calls)
    spans = [(c["at"], c["ended_at"] if c["ended_at"] is not None else ended)
             for c in trunk_calls]
    span = last_start - first
    claims = sorted(claimed for claimed, _ in calls)
    caring_held = sum((min(finished, claims[-1]) - claimed).total_seconds()
                      for claimed, finished in calls if claimed < claims[-1])
    claims_span = (claims[-1] - claims[0]).total_seconds()
    durations = [(finished - claimed).total_seconds() for claimed, finished in calls]
    finished_s = (max(f for _, f in calls) - claims[0]).total_seconds()
    mean_s = sum(durations) / len(durations)
    ideal_s = len(calls) * mean_s / TRUNK
    handover = _handovers(caring, last_start)
    return {"calls": len(calls), "mean call s (engine clock)": mean_s,
            "trunk use while caring calls waited, every call (simulator) %":
                100 * _held(spans, first, last_start) / (TRUNK * span) if span else 0.0,
            "... of it caring calls (their attempts' rows) %":
                100 * caring_held / (TRUNK * claims_span) if claims_span else 0.0,
            "the caring calls' share of the trunk %": 100 * (TRUNK - RESERVE) / TRUNK,
            "most caring calls at once": most_at_once(calls),
            "most trunk lines at once, every call (simulator)": most_at_once(spans),
            "time to finish s (engine clock)": finished_s,
            "ideal: calls x mean / trunk s": ideal_s,
            "time to finish / ideal": finished_s / ideal_s,
            "line handover, a caring call's hangup -> the next one's Originate "
            "(simulator) p50 / p99 ms": f"{percentile(handover, 50):.0f} / "
                                        f"{percentile(handover, 99):.0f}"
            if handover else "-"}


def _handovers(caring: list[dict[str, Any]], last_start: float) -> list[float]:
    """Engine-clock ms from each caring call's end to the caring call that took its line:
    the i-th end after the trunk first filled is paired with the i-th Originate after that
    fill (first in, first out), up to the last call placed."""
    starts = sorted(c["at"] for c in caring)
    ends = sorted(c["ended_at"] for c in caring if c["ended_at"] is not None)
    if not ends:
        return []
    filled = sum(1 for at in starts if at < ends[0])
    return [1000 * (start - end) for start, end in zip(starts[filled:], ends, strict=False)
            if start <= last_start]


async def _run(bench: Bench, elders: int, speed: float) -> None:
    folder = bench.run_dir("care")
    db_url, _, _ = backend_urls("embedded", folder)
    upgrade(db_url)
    generate_city(db_url, elders=elders + 2 * CALLBACKS + elders // 10, vendors=5, seed=21)
    settings = load_settings(
        None, database={"url": db_url},
        redis={"url": "", "embedded_path": str(folder / "redis.db"),
               "key_prefix": f"benchc{uuid.uuid4().hex[:8]}:"},
        agi={"port": 0}, ami={"enabled": False}, clock={"speed": speed},
        spool={"dir": str(folder / "spool")}, alarms={"spool_dir": str(folder / "alarms")},
        dial={"ring_timeout_s": 30.0},
        dispatch={"trunk_channels": TRUNK, "reconcile_s": 1.0, "rank_refresh_s": 1e9},
        care={"reserve_channels": RESERVE},
        emergency={"retry_interval_s": 3600.0, "callback_min_gap_s": CALLBACK_GAP_S,
                   "callback_max_gap_s": 7200.0})
    engine = Engine(settings, ScaledClock.starting_at(_day_start().timestamp(), speed))
    await engine.start(migrate=False, connect_ami=False)
    sim: SimulatorProcess | None = None
    started = time.perf_counter()
    cpu_started = time.process_time()
    try:
        sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{engine.agi_port}",
                                           speed=speed,
                                           log_path=bench.log_file(folder / "sim.log"))
        await sim.connect_engine(engine)
        chosen = await _callable_elders(engine, elders + 2 * CALLBACKS)
        caring, emergency = chosen[:elders], chosen[elders:]
        await sim.request("phones", phones={n: well(i) for i, (_e, n, _b) in enumerate(caring)}
                          | {n: BUSY for _e, _c, n in emergency})
        await _plan_check_ins(engine, [e for e, _c, _b in caring])
        assert engine.context is not None
        with CallbackStamps(engine) as stamps:
            idle = [await stamps.call_back(e) for e, _c, _b in emergency[:CALLBACKS]]
            idle_ended_at = engine.context.now()
            busy = await _campaign(stamps, [e for e, _c, _b in emergency[CALLBACKS:]], elders,
                                   speed)
        elapsed = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
        originated = (await sim.request("originated"))["originated"]
    finally:
        await engine.stop(grace_s=DRAIN_S)
        if sim is not None:
            await sim.stop()
    await bench.no_tasks_left("care: engine")
    figures = await _check(bench, db_url, elders, idle, busy, stamps, idle_ended_at,
                           originated)
    figures["real seconds"] = elapsed
    # the engine runs in this process: near 100 % means the figures above measure its CPU,
    # not its pacing (run slower with --care-speed)
    figures["CPU busy %, this process (engine and driver, every thread)"] = (
        100 * cpu_s / elapsed)
    bench.report(f"caring calls: {elders:,} check-ins in one morning, {TRUNK}-line trunk, "
                 f"SQLite + embedded Redis, {speed:g}x simulated time", figures)


async def _check(bench: Bench, db_url: str, elders: int, idle: list[int], busy: list[int],
                 stamps: CallbackStamps, idle_ended_at: datetime,
                 originated: list[dict[str, Any]]) -> dict[str, Any]:
    async with Stored(db_url) as stored, stored.connect() as conn:
        rounds = (await conn.execute(select(CareRound.id, CareRound.state))).all()
        calls = (await conn.execute(
            select(OutboundCall.round_id, OutboundCall.claimed_at,
                   func.coalesce(OutboundCall.hung_up_at, OutboundCall.finished_at))
            .where(OutboundCall.purpose == CallPurpose.CARE_CALL))).all()
        retries = Counter((await conn.scalars(select(OrderEvent.order_id).where(
            OrderEvent.kind == RETRY_EVENT))).all())
    bench.expect("care: rounds", elders, len(rounds))
    bench.expect("care: rounds ended with the elder well", elders,
                 sum(1 for _id, state in rounds if state == RoundState.WELL))
    bench.once_each("care: calls per round", Counter(r for r, _c, _f in calls))
    placed = [(_utc(c), _utc(f)) for _r, c, f in calls if c is not None and f is not None]
    bench.expect("care: calls placed and ended", len(calls), len(placed))
    outside = sum(1 for c, _f in placed
                  if not ALLOWED[0] <= _local(c).time() < ALLOWED[1])
    bench.expect("care: calls placed outside the allowed hours", 0, outside)
    use = _line_use(placed, originated) if placed else {}
    if use and use["most caring calls at once"] > TRUNK - RESERVE:
        bench.fail(f"care: {use['most caring calls at once']} caring calls at once, "
                   f"more than their {TRUNK - RESERVE} lines")
    if use and use["most trunk lines at once, every call (simulator)"] > TRUNK:
        bench.fail(f"care: {use['most trunk lines at once, every call (simulator)']} calls "
                   f"on the {TRUNK}-line trunk at once")
    early = sum(1 for c, _f in placed if c < _utc(idle_ended_at))
    bench.expect("care: calls placed while the idle call-backs were measured", 0, early)
    for label, orders in (("idle", idle), ("during the campaign", busy)):
        bench.expect(f"care: call-backs {label}", CALLBACKS, len(orders))
        bench.missing(f"care: call-backs {label} placed", orders, stamps.sent)
        bench.missing(f"care: call-backs {label} on their order's timeline", orders, retries)
        bench.once_each(f"care: call-backs {label} on the timeline",
                        Counter({o: retries[o] for o in orders}))
    by_context = Counter(call["context"] for call in originated)
    bench.expect("care: caring calls the simulator saw placed", len(calls),
                 by_context[Context.CARE_CALL])
    bench.expect("care: call-backs the simulator saw placed", len(idle) + len(busy),
                 by_context[Context.EMERGENCY_CALLBACK])
    bench.once_each("care: Originates per attempt", Counter(
        call["variables"].get(ChannelVar.ATTEMPT_ID) for call in originated
        if call["context"] == Context.CARE_CALL))
    # the emergencies' families are alerted too (the engine starts every open emergency's
    # escalation): those calls share the trunk with the campaign, as they would in service
    others = {context: n for context, n in by_context.items() if context not in (
        Context.CARE_CALL, Context.EMERGENCY_CALLBACK, Context.FAMILY_ALERT)}
    if others:
        bench.fail(f"care: calls placed into other contexts: {others}")
    quiet, loaded = stamps.delays_ms(idle), stamps.delays_ms(busy)
    added = percentile(loaded, 99) - percentile(quiet, 99) if quiet and loaded else float("nan")
    return {**use,
            "family alerts of the emergencies, same trunk": by_context[Context.FAMILY_ALERT],
            "calls placed outside 09:00-20:00": outside,
            "call-back, idle engine: p50 / p99 ms":
                f"{percentile(quiet, 50):.1f} / {percentile(quiet, 99):.1f}" if quiet else "-",
            "call-back during the campaign: p50 / p99 ms":
                f"{percentile(loaded, 50):.1f} / {percentile(loaded, 99):.1f}"
                if loaded else "-",
            "call-back during the campaign: slowest ms; over 1 s":
                f"{max(loaded):.0f}; {sum(1 for ms in loaded if ms > 1000)} of {len(loaded)}"
                if loaded else "-",
            "call-back p99 added ms": added,
            "goals": "trunk use >= 95 %; call-back p99 added < 1,000 ms; none outside hours"}


def _utc(at: datetime) -> datetime:
    """A stored time in UTC: SQLite hands it back without its zone."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def run(bench: Bench, elders: int = ELDERS, speed: float = SPEED) -> None:
    asyncio.run(_run(bench, elders, speed))


if __name__ == "__main__":
    standalone("care", run)
