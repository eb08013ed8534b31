"""The consoles' event stream is bounded: by entry count on every XADD, and by age."""

from __future__ import annotations

import time
import uuid

import redis.asyncio as aioredis

from dispatch.console_events import FamilyUnreached, PbxCheck, parse_entry
from ivr.live import LiveState

NODE = 100  # Redis trims "~" whole radix-tree nodes (stream-node-max-entries, default 100)


async def test_the_stream_keeps_about_maxlen_entries(redis_client: aioredis.Redis) -> None:
    live = LiveState(redis_client, f"t{uuid.uuid4().hex[:8]}:", maxlen=1000)
    try:
        for n in range(3000):
            await live.publish_direct(FamilyUnreached(order_id=n))
        length = await redis_client.xlen(live.stream_key)
        assert 1000 <= length <= 1000 + NODE
        newest = await redis_client.xrevrange(live.stream_key, count=1)
        assert parse_entry(newest[0][1]) == FamilyUnreached(order_id=2999)  # never the newest
    finally:
        await redis_client.delete(live.stream_key)


async def test_entries_older_than_the_window_are_dropped(redis_client: aioredis.Redis) -> None:
    live = LiveState(redis_client, f"t{uuid.uuid4().hex[:8]}:", maxlen=100_000)
    key = live.stream_key
    try:
        old_ms = int((time.time() - 2 * 86_400) * 1000)
        for n in range(3 * NODE):  # entries dated two days ago (explicit stream ids)
            await redis_client.xadd(key, {"type": "alert", "data": "{}"}, id=f"{old_ms}-{n}")
        await live.publish_direct(PbxCheck(ok=True, problems=[]))
        await live.trim_older_than(86_400)
        remaining = await redis_client.xrange(key)
        assert len(remaining) <= NODE + 1  # whole old nodes dropped; "~" may keep the last
        assert parse_entry(remaining[-1][1]) == PbxCheck(ok=True, problems=[])
    finally:
        await redis_client.delete(key)
