"""Wire-level: the engine is killed (SIGKILL) in the middle of a handset emergency. The call
still reaches an operator through the dialplan, the emergency order is there, and the family
escalation cut off by the kill resumes exactly once when two engines start again. An engine
killed after queueing the caller but before its order was stored leaves the order to another
engine, running all along, which stores it once, with the call's record pointing to it; one
killed after the order but before the call's record leaves that record to the other engine."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select

from dispatch.citygen import generate_city
from dispatch.db import upgrade
from dispatch.models import Call, OrderEvent, QueueCall, ServiceType, WorkOrder
from dispatch.phones import national
from ivr.demo.simproc import SimulatorProcess
from ivr.escalation import FAMILY_CONTEXT
from ivr.inflight_orders import INFLIGHT
from tests.callstack import OPERATORS, CallStack, server_backends, until
from tests.ports import closed_port
from tests.processes import engine_env, engine_process, engines, listening
from tests.sim_phones import answers_and_presses
from tests.tcp_proxy import CuttableProxy
from tests.test_engine_process import _wait_for_port
from tests.test_family_escalation import handset_with_family

SPEED = 30.0


async def test_engine_killed_mid_alarm_loses_nothing(tmp_path: Path) -> None:
    with server_backends(tmp_path) as (db_url, redis_url):
        await killed_mid_alarm(tmp_path, db_url, redis_url)


async def test_engine_killed_before_the_order_is_stored_loses_no_order(tmp_path: Path
                                                                       ) -> None:
    with server_backends(tmp_path) as (db_url, redis_url):
        await killed_mid_call(tmp_path, db_url, redis_url, b"INSERT INTO work_orders",
                              "spool")


async def test_engine_killed_before_the_call_record_is_stored_loses_no_record(
        tmp_path: Path) -> None:
    with server_backends(tmp_path) as (db_url, redis_url):
        await killed_mid_call(tmp_path, db_url, redis_url, b"INSERT INTO calls", "elder")


async def originated(sim: SimulatorProcess) -> list[dict[str, Any]]:
    return list((await sim.request("originated"))["originated"])


async def family_calls_placed(sim: SimulatorProcess, since: int) -> list[dict[str, Any]]:
    """The family calls the PBX placed after its ``since``-th Originate, once it has no
    channel left (every call has ended)."""
    await until(lambda: _idle(sim), "the PBX to have no channel left", timeout_s=90.0)
    return [call for call in (await originated(sim))[since:]
            if call["context"] == FAMILY_CONTEXT]


async def _idle(sim: SimulatorProcess) -> bool:
    return not (await sim.request("channels"))["channels"]


async def killed_mid_alarm(tmp_path: Path, db_url: str, redis_url: str) -> None:
    upgrade(db_url)
    generate_city(db_url, elders=300, vendors=5, seed=99)
    line, family = handset_with_family(db_url, 2)
    stack_db = CallStack(db_url, None, None, None)  # type: ignore[arg-type]  # for poll()
    port = closed_port()
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{port}", speed=SPEED,
                                       log_path=tmp_path / "sim.log",
                                       globals_={"HOTLINE_SPOOL_DIR": str(tmp_path / "spool")})
    env = engine_env(db_url, redis_url, sim, tmp_path, SPEED)
    log = tmp_path / "engines.log"
    try:
        await sim.request("operators", operators=OPERATORS)
        first, second = national(family[0]), national(family[1])
        await sim.request("phones", phones={
            first: {"answer": "answer", "ring_s": 1.0, "script": []},  # answers, never presses
            second: answers_and_presses(("1", 2.0), ring_s=1.0),
        })
        with engines() as running:
            running.append(engine_process(env, port, log))
            await _wait_for_port(port)
            call = asyncio.create_task(sim.call({
                "number": national(line), "name": "", "to": "12349", "context": "from-pstn",
                "script": [], "hangup_after": None}))
            orders = await stack_db.poll(
                select(WorkOrder.id).where(WorkOrder.service == ServiceType.EMERGENCY),
                bool, timeout_s=60.0)
            assert orders, log.read_text(errors="replace")
            running[0].send_signal(signal.SIGKILL)  # mid-alarm: the escalation is under way
            running[0].wait(10)
            result = await asyncio.wait_for(call, 120)
            before_restart = len(await originated(sim))
            # two engines come back; the escalation must continue once, not twice
            running.append(engine_process(env, port, log))
            running.append(engine_process(env, 0, log))
            [order_id] = orders[0]
            timeline = await stack_db.poll(
                select(OrderEvent.kind, OrderEvent.detail)
                .where(OrderEvent.order_id == order_id).order_by(OrderEvent.id),
                lambda rows: any(kind == "family_acknowledged" for kind, _ in rows),
                timeout_s=90.0)
            # a doubled escalation would show as a call of its own: once the PBX is idle,
            # every family call placed since the restart is on the timeline
            placed = await family_calls_placed(sim, before_restart)
            timeline = await stack_db.poll(
                select(OrderEvent.kind, OrderEvent.detail)
                .where(OrderEvent.order_id == order_id).order_by(OrderEvent.id),
                lambda rows: [k for k, _ in rows].count("family_called") >= len(placed),
                timeout_s=90.0)
    finally:
        await sim.stop()
    output = log.read_text(errors="replace")
    # the call reached a human although the engine died under it
    assert result["queue"] is not None and result["queue"]["operator"] in ("op1", "op2"), output
    [(uniqueid, status)] = await stack_db.poll(
        select(WorkOrder.call_uniqueid, WorkOrder.status).where(WorkOrder.id == order_id), bool)
    assert uniqueid == result["uniqueid"] and status == "new"
    kinds = [kind for kind, _ in timeline]
    assert kinds.count("family_resumed") == 1, timeline
    assert kinds.count("family_acknowledged") == 1, timeline
    second_id = next(d["contact_id"] for k, d in timeline if k == "family_acknowledged")
    calls_to_second = [d for k, d in timeline
                       if k == "family_called" and d["contact_id"] == second_id]
    assert [d["outcome"] for d in calls_to_second] == ["answered"], timeline
    assert "family_unreached" not in kinds


async def killed_mid_call(tmp_path: Path, db_url: str, redis_url: str, marker: bytes,
                          requested_by: str) -> None:
    """Engine A's database replies stop once it sends ``marker`` (the order's INSERT: the
    order never commits; the call record's: the order did); the caller is queued all the
    same, A is killed, and engine B, which served no call, stores what A could not from A's
    in-flight record: the order (``requested_by`` then says who made it) and the call's
    record pointing to it."""
    upgrade(db_url)
    generate_city(db_url, elders=300, vendors=5, seed=99)
    line, family = handset_with_family(db_url, 2)
    stack_db = CallStack(db_url, None, None, None)  # type: ignore[arg-type]  # for poll()
    direct = make_url(db_url)
    database = CuttableProxy(direct.port or 5432)
    proxied_url = direct.set(port=await database.start()).render_as_string(hide_password=False)
    port = closed_port()
    spool = tmp_path / "spool"
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{port}", speed=SPEED,
                                       log_path=tmp_path / "sim.log",
                                       globals_={"HOTLINE_SPOOL_DIR": str(spool)})
    env = engine_env(db_url, redis_url, sim, tmp_path, SPEED)
    log = tmp_path / "engines.log"
    try:
        await sim.request("operators", operators=OPERATORS)
        await sim.request("phones", phones={
            national(number): answers_and_presses(("1", 1.0), ring_s=1.0) for number in family})
        with engines() as running:
            running.append(engine_process(env, 0, log))  # B: no calls, its replay runs
            running.append(engine_process({**env, "HOTLINE_DATABASE__URL": proxied_url},
                                          port, log))  # A
            await listening(port, running[1])
            # B hears the PBX's events before the call: the queue events A cannot store
            await until(lambda: log.read_text(errors="replace").count("engine ready") == 2,
                        "both engines ready")
            database.hold_replies_after(marker)
            call = asyncio.create_task(sim.call({
                "number": national(line), "name": "", "to": "12349", "context": "from-pstn",
                "script": [], "hangup_after": None}))
            await asyncio.wait_for(database.marker_sent.wait(), 60)
            await until(lambda: _in_queue(sim, national(line)), "the caller in the queue")
            running[1].send_signal(signal.SIGKILL)
            running[1].wait(10)
            database.release_replies()
            result = await asyncio.wait_for(call, 120)
            orders = await stack_db.poll(
                select(WorkOrder.service, WorkOrder.requested_by)
                .where(WorkOrder.call_uniqueid == result["uniqueid"]), bool, timeout_s=60.0)
            entries = await stack_db.poll(
                select(QueueCall.priority, QueueCall.outcome)
                .where(QueueCall.uniqueid == result["uniqueid"],
                       QueueCall.outcome.is_not(None)), bool, timeout_s=60.0)
            records = await stack_db.poll(
                select(Call.disposition, WorkOrder.call_uniqueid)
                .join(WorkOrder, WorkOrder.id == Call.order_id)
                .where(Call.uniqueid == result["uniqueid"]), bool, timeout_s=60.0)
    finally:
        await sim.stop()
        await database.close()
    output = log.read_text(errors="replace")
    assert result["queue"] is not None and result["queue"]["operator"] in ("op1", "op2"), output
    assert [tuple(row) for row in orders] == [("emergency", requested_by)], output
    assert [tuple(row) for row in records] == [("operator", result["uniqueid"])], output
    assert [tuple(row) for row in entries] == [(10, "answered")], output
    assert "taken from" in output and "into the spool" in output
    assert not any((spool / INFLIGHT).glob("*/*.json"))


async def _in_queue(sim: SimulatorProcess, number: str) -> bool:
    return any(channel["app"] == "Queue" and channel["callerid"] == number
               for channel in (await sim.request("channels"))["channels"])


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
