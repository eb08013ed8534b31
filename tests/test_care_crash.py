"""Wire-level: a morning of check-ins shared by two engine processes on PostgreSQL and one
Redis, through the simulator; mid-run one engine is SIGKILLed and started again. No elder
gets two rounds or is called twice for one try, no elder is lost (each round ends well or
escalated to a welfare check), and both engines placed calls."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from dispatch.citygen import generate_city
from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade
from dispatch.models import CareKind, CarePlan, CareRound, Elder, OutboundCall, WorkOrder
from dispatch.phones import national
from dispatch.quality import callback_number
from ivr.demo.simproc import SimulatorProcess
from tests.callstack import CallStack, backend_urls
from tests.ports import closed_port
from tests.processes import RedisServer, engine_env, engine_process, engines
from tests.storage import PG_ENV, _pg_admin
from tests.test_dispatch_crash import kill_an_engine
from tests.test_engine_process import _wait_for_port

SPEED = 30.0
ELDERS = 30
TRIES = 2
STALL_S = 120.0
ANSWERS = {"mix": [
    {"weight": 60, "answer": "answer", "ring_s": 3.0, "script": [{"press": "1", "delay": 3.0}]},
    {"weight": 20, "answer": "noanswer"},
    {"weight": 20, "answer": "busy"},
]}


async def plan_morning(db_url: str) -> dict[str, int]:
    """Check-in plans for ``ELDERS`` elders (all day long): their numbers, national."""
    engine = make_async_engine(db_url, pool_size=1)
    numbers: dict[str, int] = {}
    try:
        async with async_sessionmaker_for(engine)() as session:
            for elder_id in (await session.scalars(select(Elder.id).order_by(Elder.id))).all():
                number = await callback_number(session, elder_id)
                if number is None or national(number) in numbers:
                    continue
                await session.execute(insert(CarePlan).values(
                    elder_id=elder_id, kind=CareKind.CHECK_IN, window_start=time(0, 0),
                    window_end=time(23, 59, 59), weekdays=127, created_at=datetime.now(UTC)))
                numbers[national(number)] = elder_id
                if len(numbers) == ELDERS:
                    break
            await session.commit()
    finally:
        await engine.dispose()
    return numbers


@pytest.mark.timeout(900)
async def test_two_engines_and_a_killed_one_lose_and_double_no_elder(tmp_path: Path) -> None:
    db_url, _, schema = backend_urls("servers", tmp_path)
    if schema is None:
        pytest.skip(f"{PG_ENV} is not set: the two-engine check-ins need PostgreSQL")
    redis = RedisServer(closed_port(), tmp_path)
    await redis.start()
    try:
        await morning_through_a_crash(tmp_path, db_url, redis)
    finally:
        redis.stop()
        _pg_admin(os.environ[PG_ENV], f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def morning_through_a_crash(tmp_path: Path, db_url: str, redis: RedisServer) -> None:
    upgrade(db_url)
    generate_city(db_url, elders=120, vendors=2, seed=41)
    numbers = await plan_morning(db_url)
    db = CallStack(db_url, None, None, None)  # type: ignore[arg-type]  # for poll()
    first_port, second_port = closed_port(), closed_port()
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{first_port}", speed=SPEED,
                                       log_path=tmp_path / "sim.log")
    env = engine_env(db_url, redis.url, sim, tmp_path, SPEED,
                     DISPATCH__TRUNK_CHANNELS="6", CARE__ALLOWED_FROM="00:00",
                     CARE__ALLOWED_UNTIL="23:59:59", CARE__RETRY_S="30",
                     CARE__TRIES=str(TRIES))
    log = tmp_path / "engines.log"
    rounds = select(CareRound.id, CareRound.elder_id, CareRound.state, CareRound.outcome)
    try:
        await sim.request("phones", phones={number: ANSWERS for number in numbers}, seed=3)
        with engines() as running:
            running.append(engine_process(env, first_port, log))
            running.append(engine_process(env, second_port, log))
            await _wait_for_port(first_port)
            await _wait_for_port(second_port)
            in_flight = await db.poll(
                select(func.count()).select_from(OutboundCall)
                .where(OutboundCall.state.in_(("dialing", "answered"))),
                lambda rows: rows[0][0] >= 2, timeout_s=60.0)
            assert in_flight[0][0] >= 2, log.read_text(errors="replace")[-3000:]
            await kill_an_engine(running, redis, lambda: engine_process(env, first_port, log))
            final = await db.poll_while_moving(
                rounds, lambda rows: len(rows) == ELDERS and all(
                    r.state in ("well", "escalated") and r.outcome != "escalating"
                    for r in rows),
                select(func.count(OutboundCall.id), func.count(OutboundCall.outcome)), STALL_S)
            originated = (await sim.request("originated"))["originated"]
    finally:
        await sim.stop()
    states = Counter(r.state for r in final)
    assert len(final) == ELDERS and set(states) <= {"well", "escalated"}, (
        states, log.read_text(errors="replace")[-3000:])
    assert sorted(r.elder_id for r in final) == sorted(numbers.values())  # one round each
    calls = await db.poll(select(OutboundCall.id, OutboundCall.round_id, OutboundCall.outcome,
                                 OutboundCall.claimed_by)
                          .where(OutboundCall.purpose == "care_call"), bool)
    dialled = Counter(call["variables"].get("HOTLINE_ATTEMPT_ID") for call in originated
                      if call["context"] == "hotline-care-call")
    assert dialled and max(dialled.values()) == 1, dialled.most_common(3)
    assert set(dialled) <= {str(call.id) for call in calls}
    per_round = Counter(call.round_id for call in calls)
    assert max(per_round.values()) <= TRIES
    welfare = await db.poll(select(WorkOrder.requested_by, WorkOrder.elder_id)
                            .where(WorkOrder.source == "care_check"), lambda _rows: True)
    escalated = {r.id: r.elder_id for r in final if r.state == "escalated"}
    assert sorted(key for key, _elder in welfare) == sorted(
        f"care_round:{round_id}" for round_id in escalated)
    assert len({call.claimed_by for call in calls if call.claimed_by}) >= 2  # both engines


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
