"""The engine's two Redis pools, on a real Redis server: background work that takes every
connection of its pool (a disaster minute's thousands of escalations) leaves the calls' pool
alone, so a screen pop still goes out at once."""

from __future__ import annotations

import asyncio
import os

import pytest

from ivr.config import RedisSettings
from ivr.redis_link import MAX_CONNECTIONS, open_redis
from tests.callstack import until
from tests.storage import REDIS_ENV


async def test_background_work_holding_every_connection_of_its_pool_leaves_the_calls_alone(
        ) -> None:
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"{REDIS_ENV} is not set")
    link = open_redis(RedisSettings(url=url))
    key = f"pools-test:{os.getpid()}"
    try:
        # every background connection busy in a blocking read
        blocked = [asyncio.ensure_future(link.background.blpop([f"{key}:never"], timeout=5))
                   for _ in range(MAX_CONNECTIONS)]
        pool = link.background.connection_pool
        await until(lambda: len(pool._in_use_connections) == MAX_CONNECTIONS,
                    "every background connection taken")
        async with asyncio.timeout(0.5):  # well within the pools' 1 s wait for a connection
            assert await link.client.xadd(f"{key}:events", {"kind": "screen_pop"})
        for task in blocked:
            task.cancel()
        await asyncio.gather(*blocked, return_exceptions=True)
        await link.client.delete(f"{key}:events")
    finally:
        await link.close()
