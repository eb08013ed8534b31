"""Leases on a real Redis server: one holder at a time, a lapsed lease taken back only if free."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from ivr.claims import Leases


async def test_one_holder_at_a_time(redis_client: aioredis.Redis) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    mine, theirs = Leases(redis_client, prefix), Leases(redis_client, prefix)
    assert await mine.claim("job", 5.0)
    assert not await theirs.claim("job", 5.0)
    assert not await theirs.refresh("job", 5.0)
    assert await mine.refresh("job", 5.0)
    await theirs.release("job")  # not theirs: nothing happens
    assert not await theirs.claim("job", 5.0)
    await mine.release("job")
    assert await theirs.claim("job", 5.0)


async def test_a_lapsed_lease_is_taken_back_unless_another_holds_it(
        redis_client: aioredis.Redis) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    slow, other = Leases(redis_client, prefix), Leases(redis_client, prefix)
    assert await slow.claim("a", 5.0) and await slow.claim("b", 5.0)
    # both lapse (the process was slow, not dead): Redis expires the keys, as at their TTL
    assert await redis_client.delete(slow.key("a"), slow.key("b")) == 2
    assert await slow.refresh("a", 5.0)  # nobody took it: still ours
    assert not await other.claim("a", 5.0)
    assert await other.claim("b", 5.0)  # taken over while lapsed
    assert not await slow.refresh("b", 5.0)
