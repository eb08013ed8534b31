"""Wire-level, on PostgreSQL and a Redis primary with a replica under three Sentinels: the
engine finds the primary through the Sentinels. A handset emergency is served; the primary
is killed with SIGKILL and the Sentinels promote the replica; the next handset emergency is
served as one too, without restarting the engine: queued at priority 10 with its order, and
its screen pop reaches the consoles' stream on the new primary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from sqlalchemy import select

from dispatch.models import WorkOrder
from dispatch.phones import national
from tests.bench.checks import stream_events
from tests.callstack import CallStack, open_stack, until
from tests.redis_sentinel import SentinelGroup

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sentinels(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SentinelGroup]:
    group = SentinelGroup(tmp_path_factory.mktemp("sentinels"))
    try:
        await group.start()
        yield group
    finally:
        group.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(sentinels: SentinelGroup, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[CallStack]:
    overrides = {"redis": {"url": "redis://127.0.0.1/0", "sentinels": sentinels.addresses,
                           "sentinel_service": "hotline"}}
    async for opened in open_stack("server", tmp_path_factory.mktemp("failover"), ami=True,
                                   engine_overrides=overrides):
        yield opened


async def _emergency(stack: CallStack, index: int) -> dict[str, Any]:
    result = await stack.sim.call({"number": national(stack.numbers["handsets"][index]),
                                   "name": "", "to": "12349", "context": "from-pstn",
                                   "script": [], "hangup_after": None})
    assert result["queue"] is not None and result["queue"]["priority"] == 10, result
    assert result["variables"]["HOTLINE_REASON"] == "handset_emergency", result
    return result


async def _popped(stack: CallStack, port: int, uniqueid: str) -> bool:
    """The call's screen pop is in the stream of the Redis on ``port``."""
    client = aioredis.Redis(port=port, db=0, socket_timeout=2)
    try:
        events = await stream_events(client, f"{stack.settings.redis.key_prefix}events",
                                     "screen_pop")
    finally:
        await client.aclose()
    return any(event["uniqueid"] == uniqueid for _, event in events)


async def test_the_engine_follows_the_primary_the_sentinels_promote(
        sentinels: SentinelGroup, stack: CallStack) -> None:
    first = await _emergency(stack, 0)
    await until(lambda: _popped(stack, sentinels.primary.port, first["uniqueid"]),
                "the first screen pop on the primary")
    sentinels.primary.kill()
    await sentinels.failed_over()
    assert await sentinels.primary_port() == sentinels.replica.port
    second = await _emergency(stack, 1)
    calls = sorted([first["uniqueid"], second["uniqueid"]])
    orders = await stack.poll(select(WorkOrder.call_uniqueid).where(
        WorkOrder.call_uniqueid.in_(calls)), lambda rows: len(rows) == 2)
    assert sorted(uniqueid for (uniqueid,) in orders) == calls
    await until(lambda: _popped(stack, sentinels.replica.port, second["uniqueid"]),
                "the second screen pop on the new primary")
