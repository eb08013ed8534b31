"""The console's live feed against a real redis-server: region filtering, resuming from an
event id with no gap and no duplicate, slow pages, and Redis going away and coming back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from dispatch.console_events import CallStarted, ConsoleEvent, ScreenPop, entry_fields
from dispatch.regions import Place, RegionScope
from ivr.console.live_feed import FeedStatus, LiveEvent, LiveFeed
from tests.callstack import until
from tests.ports import closed_port
from tests.processes import RedisServer

STREAM = "feedtest:events"
COUNTY_A, COUNTY_B = RegionScope.parse("county:110105"), RegionScope.parse("county:110106")
CITY = RegionScope.parse("city:110100")


def place(county: str | None) -> Place:
    return Place("110000", "110100", county) if county else Place()


class Page:
    """One subscriber read by a task of its own, collecting what it is given."""

    def __init__(self, feed: LiveFeed, scope: RegionScope, since: str | None = None,
                 kinds: frozenset[str] | None = None) -> None:
        self.events: list[LiveEvent] = []
        self.states: list[str] = []
        self.paused = asyncio.Event()
        self.paused.set()
        self._task = asyncio.create_task(self._read(feed.subscribe(scope, since, kinds)))

    async def _read(self, items: AsyncIterator[Any]) -> None:
        async for item in items:
            await self.paused.wait()
            if isinstance(item, FeedStatus):
                self.states.append(item.state)
            else:
                self.events.append(item)

    @property
    def numbers(self) -> list[int]:
        return [int(event.data["uniqueid"]) for event in self.events]

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(closed_port(), tmp_path)
    await server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    yield client
    await client.aclose()


@pytest.fixture
async def feed(client: aioredis.Redis) -> AsyncIterator[LiveFeed]:
    feed = LiveFeed(client, STREAM, block_ms=200)
    await feed.start()
    yield feed
    await feed.stop()


async def add(client: aioredis.Redis, n: int, county: str | None = None,
              outbox_id: int | None = None, kind: str = "screen_pop") -> str:
    """Event ``n`` (its uniqueid) about an elder of ``county`` (None: an unknown caller)."""
    event: ConsoleEvent = (
        ScreenPop(uniqueid=str(n), reason="handset_emergency", priority=10,
                  caller_status="elder", place=place(county)) if kind == "screen_pop"
        else CallStarted(uniqueid=str(n), status="elder", place=place(county)))
    return (await client.xadd(STREAM, entry_fields(event, outbox_id))).decode()


async def test_each_page_gets_its_region_and_the_unplaced_events(
        feed: LiveFeed, client: aioredis.Redis) -> None:
    a, b, city = Page(feed, COUNTY_A), Page(feed, COUNTY_B), Page(feed, CITY)
    pops = Page(feed, CITY, kinds=frozenset({"screen_pop"}))
    await until(lambda: feed.subscribers == 4, "four pages subscribed")
    await add(client, 1, "110105")
    await add(client, 2, "110106")
    await add(client, 0, kind="call_started")  # not a kind the last page asked for
    await add(client, 3)  # an unknown caller: no place
    await until(lambda: len(city.numbers) == 4, "the city page has all four")
    await until(lambda: len(a.numbers) == 3 and len(b.numbers) == 3, "county pages")
    await until(lambda: len(pops.numbers) == 3, "the screen pops")
    assert a.numbers == [1, 0, 3] and b.numbers == [2, 0, 3] and city.numbers == [1, 2, 0, 3]
    assert pops.numbers == [1, 2, 3]
    assert a.states == ["live"]
    for page in (a, b, city, pops):
        await page.close()


async def test_a_page_resumes_after_its_last_event_id_with_no_gap_and_no_duplicate(
        feed: LiveFeed, client: aioredis.Redis) -> None:
    ids = [await add(client, n) for n in range(5)]
    await until(lambda: feed.position == ids[-1], "the reader has read them")
    async def more() -> None:
        for n in range(5, 40):
            await add(client, n)

    adding = asyncio.create_task(more())  # while the page reads its backlog
    page = Page(feed, CITY, since=ids[1])
    await adding
    await until(lambda: len(page.numbers) >= 38, "the page caught up")
    await add(client, 40)
    await until(lambda: page.numbers[-1:] == [40], "the page is live")
    assert page.numbers == list(range(2, 41))
    await page.close()


async def test_an_entry_that_breaks_the_contract_is_skipped(
        feed: LiveFeed, client: aioredis.Redis) -> None:
    page = Page(feed, CITY)
    await until(lambda: feed.subscribers == 1, "subscribed")
    await client.xadd(STREAM, {"type": "screen_pop", "data": "{not json"})
    await client.xadd(STREAM, {"type": "no_such_kind", "data": "{}"})
    await add(client, 1)
    await until(lambda: page.numbers == [1], "the good event after the bad ones")
    await page.close()


async def test_an_event_published_twice_by_the_outbox_reaches_a_page_once(
        feed: LiveFeed, client: aioredis.Redis) -> None:
    page = Page(feed, CITY)
    await until(lambda: feed.subscribers == 1, "subscribed")
    await add(client, 1, outbox_id=7)
    await add(client, 1, outbox_id=7)  # the relay published the row again
    await add(client, 2, outbox_id=8)
    await until(lambda: page.numbers[-1:] == [2], "the third event")
    assert page.numbers == [1, 2]
    await page.close()


async def test_a_slow_page_stalls_nobody_and_catches_up_without_a_gap(
        client: aioredis.Redis) -> None:
    feed = LiveFeed(client, STREAM, queue_size=5, block_ms=200)
    await feed.start()
    slow, fast = Page(feed, CITY), Page(feed, CITY)
    try:
        await until(lambda: feed.subscribers == 2, "subscribed")
        slow.paused.clear()  # it stops reading: its queue fills and overflows
        for n in range(50):
            await add(client, n)
        await until(lambda: len(fast.numbers) == 50, "the fast page has every event")
        assert len(slow.numbers) < 50
        slow.paused.set()
        await until(lambda: len(slow.numbers) == 50, "the slow page caught up")
        assert slow.numbers == fast.numbers == list(range(50))
        assert feed.catch_ups >= 1
    finally:
        await slow.close()
        await fast.close()
        await feed.stop()


async def test_pages_see_reconnecting_while_redis_is_down_and_resume_after(
        feed: LiveFeed, client: aioredis.Redis, redis_server: RedisServer) -> None:
    page = Page(feed, CITY)
    await until(lambda: feed.subscribers == 1, "subscribed")
    await add(client, 1)
    await until(lambda: page.numbers == [1], "the first event")
    redis_server.kill()
    await until(lambda: page.states[-1:] == ["reconnecting"], "the page told of the outage")
    await redis_server.start()
    await until(lambda: page.states[-1:] == ["live"], "the page told Redis is back")
    fresh = aioredis.Redis.from_url(redis_server.url)  # the old client's connection is dead
    await add(fresh, 2)
    await fresh.aclose()
    await until(lambda: page.numbers == [1, 2], "the event after the outage")
    await page.close()
