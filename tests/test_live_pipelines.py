"""The live state of the calls of the moment goes to Redis in one pipeline
(``ivr/live.py``): each call's commands still land, and a command Redis refuses fails only
the call it belongs to."""

from __future__ import annotations

import asyncio
import os
import uuid

import redis.asyncio as aioredis

from dispatch.console_events import CallEnded, CallStarted
from ivr.live import LiveState
from tests.storage import REDIS_ENV


async def test_a_refused_command_fails_only_its_own_call(redis_client: aioredis.Redis) -> None:
    live = LiveState(redis_client, f"t{uuid.uuid4().hex[:8]}:", maxlen=1000)
    calls = [f"1700000000.{n}" for n in range(5)]
    await redis_client.set(live.call_key(calls[2]), "not a hash")  # HSET on it is refused
    taken = []
    pool = redis_client.connection_pool
    get_connection = pool.get_connection

    async def counted(*args: object, **kwargs: object) -> object:
        taken.append(1)
        return await get_connection(*args, **kwargs)

    pool.get_connection = counted  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(live.call_started(CallStarted(
            uniqueid=uniqueid, channel="PJSIP/trunk-1", status="elder", caller="138****0000"))
            for uniqueid in calls))
    finally:
        pool.get_connection = get_connection  # type: ignore[method-assign]
    assert len(taken) == 1  # the five calls' commands in one pipeline, on one connection
    assert live.errors == 1
    members = await redis_client.smembers(live.live_calls_key)
    # the refused call's other commands still ran: only its hash is missing
    assert {m.decode() for m in members} == set(calls)
    for uniqueid in calls:
        stored = await redis_client.type(live.call_key(uniqueid))
        assert stored == (b"string" if uniqueid == calls[2] else b"hash")
    assert await redis_client.xlen(live.stream_key) == 5
    await live.call_ended(CallEnded(uniqueid=calls[0], disposition="order"))
    assert await redis_client.exists(live.call_key(calls[0])) == 0
    await redis_client.delete(live.stream_key, live.live_calls_key,
                              *(live.call_key(uniqueid) for uniqueid in calls))


async def test_a_redis_that_forgot_the_scripts_is_taught_them_again(
        redis_client: aioredis.Redis) -> None:
    """A restarted Redis, or a replica just promoted, knows none of the scripts: the calls
    refused for it are sent again, not lost."""
    live = LiveState(redis_client, f"t{uuid.uuid4().hex[:8]}:", maxlen=1000)
    await live.call_started(CallStarted(uniqueid="1700000001.1", channel="PJSIP/trunk-1",
                                        status="elder", caller="138****0000"))
    await redis_client.script_flush()
    calls = [f"1700000001.{n}" for n in range(2, 6)]
    await asyncio.gather(*(live.call_started(CallStarted(
        uniqueid=uniqueid, channel="PJSIP/trunk-1", status="elder", caller="138****0000"))
        for uniqueid in calls))
    await live.call_ended(CallEnded(uniqueid=calls[0], disposition="order"))
    assert live.errors == 0
    members = {m.decode() for m in await redis_client.smembers(live.live_calls_key)}
    assert members == {"1700000001.1", *calls[1:]}
    assert await redis_client.hget(live.call_key(calls[1]), "status") == b"elder"
    assert 0 < await redis_client.ttl(live.call_key(calls[1])) <= 6 * 3600
    kinds = [fields[b"type"] for _id, fields in await redis_client.xrange(live.stream_key)]
    assert kinds == [b"call_started"] * 5 + [b"call_ended"]
    await redis_client.delete(live.stream_key, live.live_calls_key,
                              *(live.call_key(uniqueid) for uniqueid in calls))


async def test_a_connection_redis_closed_is_replaced_not_reused(
        redis_client: aioredis.Redis) -> None:
    """Redis drops the connection the live state writes on: a write refused for it is
    counted, and the next one goes on a new connection."""
    live = LiveState(redis_client, f"t{uuid.uuid4().hex[:8]}:", maxlen=1000)
    event = CallEnded(uniqueid="1700000002.1", disposition="order")
    assert await live.publish_direct(event)
    pool = redis_client.connection_pool
    connection = await pool.get_connection()
    try:
        await connection.send_command("CLIENT", "ID")
        connection_id = await connection.read_response()
    finally:
        await pool.release(connection)
    killer = aioredis.Redis.from_url(os.environ[REDIS_ENV])
    try:
        assert await killer.execute_command("CLIENT", "KILL", "ID", connection_id) == 1
    finally:
        await killer.aclose()
    sent = [await live.publish_direct(event) for _ in range(2)]
    assert sent[-1] and live.errors == sent.count(False)
    assert await redis_client.xlen(live.stream_key) == 1 + sent.count(True)
    await redis_client.delete(live.stream_key)
