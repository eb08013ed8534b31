"""Wire-level, on PostgreSQL: an emergency caller reaches the operator queue without waiting
for the order to be stored. With the orders table locked by another session, a handset call
is queued and answered all the same; its order is stored once the lock goes, and the call
record points to it. When the engine stops before the order could be stored, the order goes
to the emergency spool, and the spool replay stores it, once. With the database unreachable
a handset call is still an emergency, and its order, queue entry and call record are all
stored once the database is back; so are those of a burst of twelve made while it is gone
for 10 s."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from dispatch.console_events import ScreenPop, parse_entry
from dispatch.models import Call, QueueCall, WorkOrder
from dispatch.phones import national
from ivr.spool_service import replay_once
from tests.callstack import CallStack, open_stack, until
from tests.storage import table_locked

pytestmark = pytest.mark.asyncio(loop_scope="module")

OUTAGE_S = 10.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    async for opened in open_stack("server", tmp_path_factory.mktemp("queue-first"),
                                   db_proxy=True, ami=True):
        yield opened


def orders_of(stack: CallStack, uniqueid: str) -> list[Any]:
    return stack.rows(select(WorkOrder.id, WorkOrder.service, WorkOrder.order_no)
                      .where(WorkOrder.call_uniqueid == uniqueid))


def call_record(stack: CallStack, uniqueid: str) -> Any:
    rows = stack.rows(select(Call.order_id, Call.reason).where(Call.uniqueid == uniqueid))
    return rows[0] if rows else None


async def handset_call(stack: CallStack, index: int) -> dict[str, Any]:
    return await stack.sim.call({"number": national(stack.numbers["handsets"][index]),
                                 "name": "", "to": "12349", "context": "from-pstn",
                                 "script": [], "hangup_after": None})


def inflight_records(stack: CallStack, uniqueid: str) -> list[Path]:
    """The in-flight records the engine holds for call ``uniqueid``."""
    return list((Path(stack.settings.spool.dir) / "inflight").rglob(f"*{uniqueid}*"))


def queue_entry(stack: CallStack, uniqueid: str) -> Any:
    """The call's queue record once its answer is in it (None before)."""
    rows = stack.rows(select(QueueCall).where(QueueCall.uniqueid == uniqueid,
                                              QueueCall.answered_at.is_not(None)))
    return rows[0] if rows else None


def queued(result: dict[str, Any]) -> bool:
    return result["queue"] is not None and any(app == "Queue" for _, app, _ in result["apps"])


async def test_the_caller_is_queued_while_the_order_waits(stack: CallStack) -> None:
    with table_locked(stack.db_url, "work_orders"):
        result = await handset_call(stack, 0)
        assert queued(result) and result["queue"]["priority"] == 10
        assert orders_of(stack, result["uniqueid"]) == []  # queued, answered, not stored yet
    uniqueid = result["uniqueid"]
    record = await until(lambda: call_record(stack, uniqueid), "the call record")
    orders = orders_of(stack, uniqueid)
    assert [(o.service, o.id) for o in orders] == [("emergency", record.order_id)]
    assert record.reason == "handset_emergency"
    # both stored: the in-flight record a killed engine would have left goes
    await until(lambda: not inflight_records(stack, uniqueid), "the in-flight record gone")


async def test_an_order_not_stored_at_a_stop_is_spooled_and_replayed_once(
        stack: CallStack) -> None:
    assert stack.engine is not None and stack.engine.context is not None
    ctx = stack.engine.context
    spool = Path(stack.settings.spool.dir)
    with table_locked(stack.db_url, "work_orders"):
        result = await handset_call(stack, 1)
        assert queued(result)
        await until(lambda: ctx.emergency_orders.pending == 1, "the order waiting")
        await ctx.emergency_orders.close()  # as the engine's stop does
        spooled = list(spool.glob("*.json"))
        assert len(spooled) == 1 and result["uniqueid"] in spooled[0].name
    uniqueid = result["uniqueid"]
    record = await until(lambda: call_record(stack, uniqueid), "the call record")
    assert record.order_id is None and record.reason == "handset_emergency"
    await replay_once(ctx)  # this pass or the engine's own, whichever came first
    assert await replay_once(ctx) == 0
    orders = orders_of(stack, uniqueid)
    assert [o.service for o in orders] == ["emergency"]
    assert not list(spool.glob("*.json")) and len(list((spool / "replayed").glob("*"))) == 1


async def test_an_order_whose_store_fails_unexpectedly_is_spooled_and_replayed(
        stack: CallStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault of no known kind in the order's write (a driver error nobody foresaw): the
    order goes to the spool, and the replay stores it."""
    assert stack.engine is not None and stack.engine.context is not None
    ctx = stack.engine.context

    async def broken(*_args: object) -> None:
        raise RuntimeError("a driver fault nobody foresaw")

    monkeypatch.setattr("ivr.emergency_orders.store_emergency_order", broken)
    result = await handset_call(stack, 15)
    assert queued(result)
    uniqueid = result["uniqueid"]
    record = await until(lambda: call_record(stack, uniqueid), "the call record")
    assert record.order_id is None and record.reason == "handset_emergency"
    monkeypatch.undo()
    await replay_once(ctx)  # this pass or the engine's own, whichever came first
    assert await replay_once(ctx) == 0
    assert [o.service for o in orders_of(stack, uniqueid)] == ["emergency"]


async def test_a_handset_is_an_emergency_while_the_database_is_unreachable(
        stack: CallStack) -> None:
    assert stack.db_proxy is not None and stack.engine is not None
    ctx = stack.engine.context
    assert ctx is not None
    await until(lambda: len(ctx.handsets) > 0, "the handset lines read")
    await stack.db_proxy.cut()
    try:
        result = await handset_call(stack, 2)
        assert queued(result) and result["variables"]["QUEUE_PRIO"] == "10"
        assert result["variables"]["HOTLINE_REASON"] == "handset_emergency"
    finally:
        stack.db_proxy.restore()
    uniqueid = result["uniqueid"]
    record = await until(lambda: call_record(stack, uniqueid), "the call record")
    orders = orders_of(stack, uniqueid)
    assert [(o.service, o.id) for o in orders] == [("emergency", record.order_id)]
    assert record.reason == "handset_emergency"
    # the queue's events came while the database was away: written once it was back
    entry = await until(lambda: queue_entry(stack, uniqueid), "the queue entry")
    assert entry.queued_at is not None and entry.joined_at is not None
    assert entry.priority == 10 and entry.outcome == "answered"


async def test_a_burst_while_the_database_is_gone_for_ten_seconds_loses_nothing(
        stack: CallStack) -> None:
    """Twelve handset calls while PostgreSQL is unreachable for 10 s: every one is queued as
    an emergency at once, and once the database is back each has its order (once), its call
    record pointing to it and its answered queue entry."""
    assert stack.db_proxy is not None and stack.engine is not None
    ctx = stack.engine.context
    assert ctx is not None
    await until(lambda: len(ctx.handsets) > 0, "the handset lines read")
    loop = asyncio.get_running_loop()
    await stack.db_proxy.cut()
    gone_at = loop.time()
    try:
        results = await asyncio.gather(*(handset_call(stack, index) for index in range(3, 15)))
        # the outage lasts its 10 s whatever the calls took (a scenario, not a wait for them)
        await asyncio.sleep(max(0.0, OUTAGE_S - (loop.time() - gone_at)))
    finally:
        stack.db_proxy.restore()
    for result in results:
        assert queued(result) and result["variables"]["QUEUE_PRIO"] == "10", result
    for result in results:
        uniqueid = result["uniqueid"]
        record = await until(lambda uid=uniqueid: call_record(stack, uid), "a call record")
        orders = orders_of(stack, uniqueid)
        assert [(o.service, o.id) for o in orders] == [("emergency", record.order_id)]
        entry = await until(lambda uid=uniqueid: queue_entry(stack, uid), "a queue entry")
        assert entry.priority == 10 and entry.outcome == "answered"


async def test_a_call_record_stored_in_the_background_releases_the_in_flight_record(
        stack: CallStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The call record's first write is refused (on a disaster minute: the database busy),
    so it is stored later by the background writes: once it is, the emergency's in-flight
    record goes too (it stayed forever, and every restart replayed it again)."""
    from sqlalchemy.exc import OperationalError

    from ivr import emergency_orders

    stored = emergency_orders.record_call
    refused: list[str] = []

    async def refused_once(session: Any, **record: Any) -> Any:
        if not refused:
            refused.append(record["uniqueid"])
            raise OperationalError("INSERT INTO calls", None, ConnectionError("busy"))
        return await stored(session, **record)

    monkeypatch.setattr(emergency_orders, "record_call", refused_once)
    result = await handset_call(stack, 3)
    assert queued(result)
    uniqueid = result["uniqueid"]
    record = await until(lambda: call_record(stack, uniqueid), "the call record")
    assert refused == [uniqueid] and record.order_id is not None
    await until(lambda: not inflight_records(stack, uniqueid), "the in-flight record gone")


DEAD_ENGINE = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from agi_scripts.emergency_spool import spool_record
from ivr.inflight_orders import InflightOrders
spool, uniqueid, caller = sys.argv[1:4]
now = datetime.now(UTC)
InflightOrders(Path(spool)).hold(spool_record(uniqueid, uniqueid, "PJSIP/trunk-9", caller, "",
                                              "handset_emergency", "", now), now)
print("held", flush=True)
sys.stdin.read()
"""


async def test_a_call_a_killed_engine_left_in_flight_gets_its_screen_pop(
        stack: CallStack) -> None:
    """An engine killed after it routed a handset caller, before the pop went out (it may
    follow the route) and before the call ended: the replay that adopts its in-flight record
    stores the order and publishes the pop."""
    assert stack.engine is not None and stack.engine.context is not None
    ctx = stack.engine.context
    uniqueid = f"{uuid.uuid4().int % 10**9}.{os.getpid()}"
    caller = stack.numbers["handsets"][16]
    engine = subprocess.Popen(
        [sys.executable, "-c", DEAD_ENGINE, stack.settings.spool.dir, uniqueid, caller],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert engine.stdout is not None and engine.stdout.readline() == "held\n"
    engine.send_signal(signal.SIGKILL)
    engine.wait()
    await replay_once(ctx)  # or the engine's own pass did it first
    assert [o.service for o in orders_of(stack, uniqueid)] == ["emergency"]
    client = stack.engine.context.live._client
    pops = [parse_entry(fields) for _id, fields in
            await client.xrange(f"{stack.settings.redis.key_prefix}events")
            if fields[b"type"] == b"screen_pop"]
    (pop,) = [p for p in pops if isinstance(p, ScreenPop) and p.uniqueid == uniqueid]
    assert pop.priority == 10 and pop.profile is not None and pop.order_no is not None
