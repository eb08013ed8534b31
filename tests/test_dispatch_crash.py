"""Wire-level: dispatch survives crashes. Two engine processes share the simulator's Asterisk,
one PostgreSQL and one Redis; mid-run one engine is SIGKILLed (or Redis is killed and comes
back empty). Every order still ends accepted or escalated, and no attempt is dialled twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatch.citygen import generate_city
from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade
from dispatch.models import Elder, OutboundCall, ServiceType, WorkOrder
from dispatch.orders import create_order
from ivr.demo.simproc import SimulatorProcess
from tests.callstack import CallStack, backend_urls
from tests.dispatch_world import rank_vendors
from tests.ports import closed_port
from tests.processes import RedisServer, engine_env, engine_process, engines
from tests.storage import PG_ENV, _pg_admin
from tests.test_engine_process import _wait_for_port

SPEED = 30.0
# 20 s on an idle machine, 50 s beside six busy processes, several minutes under CPU stress:
# the wait fails when no order has moved on for STALL_S (stuck), not after a fixed total
STALL_S = 120.0
DISPATCH_BUDGET_S = 900.0
ORDERS = 40
RETRY = {"declined": {"tries": 1}, "no_key": {"tries": 1},
         "busy": {"tries": 2, "backoff_s": 20}, "no_answer": {"tries": 2, "backoff_s": 20},
         "rejected": {"tries": 1},
         "hangup": {"tries": 1}, "congestion": {"tries": 2, "backoff_s": 20},
         "failed": {"tries": 1}, "lost": {"tries": 1}}
VENDOR_MIX = {"mix": [
    {"weight": 55, "answer": "answer", "ring_s": 4.0,
     "script": [{"press": "1", "delay": 4.0}]},
    {"weight": 15, "answer": "answer", "ring_s": 4.0,
     "script": [{"press": "2", "delay": 4.0}]},
    {"weight": 15, "answer": "busy"},
    {"weight": 15, "answer": "noanswer"},
]}
Disruption = Callable[[list[Any], RedisServer, Callable[[], Any]], Awaitable[None]]


async def kill_an_engine(running: list[Any], redis: RedisServer, restart: Callable[[], Any]
                         ) -> None:
    running[0].send_signal(signal.SIGKILL)
    running[0].wait(10)
    await asyncio.sleep(1.0)
    running.append(restart())


async def restart_redis(running: list[Any], redis: RedisServer, restart: Callable[[], Any]
                        ) -> None:
    redis.kill()
    await asyncio.sleep(1.5)
    await redis.start()


@pytest.mark.timeout(DISPATCH_BUDGET_S + 180)
@pytest.mark.parametrize("disrupt", [kill_an_engine, restart_redis], ids=["sigkill", "redis"])
async def test_every_order_dispatched_once_through_a_crash(tmp_path: Path,
                                                           disrupt: Disruption) -> None:
    db_url, _, schema = backend_urls("servers", tmp_path)
    redis = RedisServer(closed_port(), tmp_path)
    await redis.start()
    try:
        await dispatch_through(tmp_path, db_url, redis, disrupt)
    finally:
        redis.stop()
        if schema is not None:
            _pg_admin(os.environ[PG_ENV], f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def place_orders(db_url: str, count: int) -> list[int]:
    engine = make_async_engine(db_url)
    sessions = async_sessionmaker_for(engine)
    try:
        async with sessions() as session:
            elders = list(await session.scalars(select(Elder.id).order_by(Elder.id)
                                                .limit(count)))
        ids = []
        for elder_id in elders:
            async with sessions() as session:
                order = await create_order(session, elder_id=elder_id,
                                           service=ServiceType.HOUSEKEEPING, source="phone",
                                           call_uniqueid=None, requested_by="elder",
                                           at=datetime.now(UTC))
            ids.append(order.id)
        return ids
    finally:
        await engine.dispose()


async def dispatch_through(tmp_path: Path, db_url: str, redis: RedisServer,
                           disrupt: Disruption) -> None:
    upgrade(db_url)
    generate_city(db_url, elders=200, vendors=5, seed=99)
    vendors = rank_vendors(db_url)
    db = CallStack(db_url, None, None, None)  # type: ignore[arg-type]  # for poll()
    first_port, second_port = closed_port(), closed_port()
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{first_port}", speed=SPEED,
                                       log_path=tmp_path / "sim.log")
    env = engine_env(db_url, redis.url, sim, tmp_path, SPEED,
                     DISPATCH__RETRY=json.dumps(RETRY), DISPATCH__TRUNK_CHANNELS="8",
                     DISPATCH__VENDOR_CHANNELS="3")
    log = tmp_path / "engines.log"
    try:
        await sim.request("phones", phones={v.phone: VENDOR_MIX for v in vendors}, seed=7)
        with engines() as running:
            running.append(engine_process(env, first_port, log))
            running.append(engine_process(env, second_port, log))
            await _wait_for_port(first_port)
            await _wait_for_port(second_port)
            orders = await place_orders(db_url, ORDERS)
            in_flight = await db.poll(
                select(func.count()).select_from(OutboundCall)
                .where(OutboundCall.state.in_(("dialing", "answered"))),
                lambda rows: rows[0][0] >= 2, timeout_s=60.0)
            assert in_flight[0][0] >= 2, log.read_text(errors="replace")
            await disrupt(running, redis, lambda: engine_process(env, first_port, log))
            final = await db.poll_while_moving(
                select(WorkOrder.id, WorkOrder.status, WorkOrder.vendor_id)
                .where(WorkOrder.id.in_(orders)),
                lambda rows: all(r.status in ("accepted", "escalated") for r in rows),
                select(func.count(OutboundCall.id), func.count(OutboundCall.outcome))
                .where(OutboundCall.order_id.in_(orders)), STALL_S)
            originated = (await sim.request("originated"))["originated"]
    finally:
        await sim.stop()
    output = log.read_text(errors="replace")
    assert all(r.status in ("accepted", "escalated") for r in final), (
        Counter(r.status for r in final), output[-3000:])
    assert len(final) == ORDERS
    offers = await db.poll(
        select(OutboundCall.id, OutboundCall.order_id, OutboundCall.vendor_id,
               OutboundCall.outcome, OutboundCall.claimed_by)
        .where(OutboundCall.order_id.in_(orders)), bool)
    dialled = Counter(call["variables"].get("HOTLINE_ATTEMPT_ID") for call in originated
                      if call["context"] == "hotline-vendor-offer")
    assert dialled and max(dialled.values()) == 1, dialled.most_common(3)
    known = {str(offer.id) for offer in offers}
    assert set(dialled) <= known
    accepted = Counter(offer.order_id for offer in offers if offer.outcome == "accepted")
    assert max(accepted.values()) == 1
    by_order = {r.id: r for r in final}
    for offer in offers:
        if offer.outcome == "accepted":
            assert by_order[offer.order_id].vendor_id == offer.vendor_id
    engines_used = {offer.claimed_by for offer in offers if offer.claimed_by}
    assert len(engines_used) >= 2, engines_used  # both engines dialled


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
