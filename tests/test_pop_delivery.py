"""A call waits for its card only where a live page would show it, over a real Redis: the
regions a console's open pages cover reach every engine, and leave when the pages close or
the console goes silent; the console's word that every page has the card on screen ends the
wait at once, and without it the cap does; with Redis gone nobody is waited for."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from dispatch.regions import Place, RegionScope
from ivr.acks import Acknowledgements
from ivr.console.live_feed import LiveEvent
from ivr.console.live_pages import LiveContext, card_going_out, card_on_screen
from ivr.pop_delivery import (
    OpenScreens,
    WatchedRegions,
    is_uniqueid,
    seen_key,
    watchers_key,
)
from tests.ports import closed_port
from tests.processes import RedisServer

COUNTY = RegionScope.parse("county:110105")
HERE = Place("110000", "110100", "110105")
NEXT_COUNTY = Place("110000", "110100", "110108")
OTHER_PROVINCE = Place("310000", "310100", "310101")


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def engine_side(redis_client: aioredis.Redis, prefix: str
                      ) -> AsyncIterator[WatchedRegions]:
    acks = Acknowledgements(redis_client, prefix)
    acks.start()
    await asyncio.wait_for(acks.subscribed.wait(), 10)
    yield WatchedRegions(redis_client, prefix, acks)
    await acks.close()


async def watching(regions: WatchedRegions, want: bool, place: Place = HERE) -> None:
    """Read the set until the place is (or is no longer) watched."""
    async with asyncio.timeout(10):
        while True:
            await regions.refresh()
            if regions.watched(place) is want:
                return
            await asyncio.sleep(0.02)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_an_open_page_makes_its_region_watched_until_it_closes(
        redis_client: aioredis.Redis, prefix: str, engine_side: WatchedRegions) -> None:
    screens = OpenScreens(redis_client, prefix)
    await screens.renew()
    await engine_side.refresh()
    assert not engine_side.watched(HERE) and not engine_side.watched(Place())
    with screens.opened(COUNTY):
        await screens.renew()
        await engine_side.refresh()
        assert engine_side.scopes == {COUNTY} and engine_side.watched(HERE)
        assert engine_side.watched(Place())  # an unknown caller's pop goes to everyone
        assert not engine_side.watched(NEXT_COUNTY)
        assert not engine_side.watched(OTHER_PROVINCE)
        with screens.opened(COUNTY):  # a second page of the county, closed first
            pass
        await screens.renew()
        await engine_side.refresh()
        assert engine_side.watched(HERE)  # the first page is still open
    await screens.renew()
    await engine_side.refresh()
    assert not engine_side.watched(HERE)
    assert await redis_client.zcard(watchers_key(prefix)) == 0


async def test_pages_opening_and_closing_are_announced_without_waiting_for_the_renewal(
        redis_client: aioredis.Redis, prefix: str, engine_side: WatchedRegions) -> None:
    screens = OpenScreens(redis_client, prefix)
    renewing = asyncio.create_task(screens.renew_forever())
    try:
        with screens.opened(COUNTY):
            await watching(engine_side, True)  # long before the 5 s renewal
        await watching(engine_side, False)
    finally:
        await stop(renewing)


async def test_a_console_gone_silently_is_not_waited_for(
        redis_client: aioredis.Redis, prefix: str, engine_side: WatchedRegions) -> None:
    # a console killed mid-watch: its member stays, with an expiry that has passed
    await redis_client.zadd(watchers_key(prefix), {f"{COUNTY}|dead": time.time() - 1,
                                                  "not a region|x": time.time() + 60})
    await engine_side.refresh()
    assert not engine_side.watched(HERE) and engine_side.scopes == frozenset()
    # the next console to renew clears it away
    await OpenScreens(redis_client, prefix).renew()
    assert await redis_client.zscore(watchers_key(prefix), f"{COUNTY}|dead") is None


async def test_a_shown_card_ends_the_wait_and_a_missing_one_the_cap(
        redis_client: aioredis.Redis, prefix: str, engine_side: WatchedRegions) -> None:
    # no page of the region: no wait at all
    assert await engine_side.shown("1733390000.1", HERE, timeout_s=30.0) is None
    screens = OpenScreens(redis_client, prefix)
    console = Acknowledgements(redis_client, prefix)  # the console's side, another process
    try:
        with screens.opened(COUNTY):
            await screens.renew()
            await engine_side.refresh()
            assert await engine_side.shown("1733390000.2", NEXT_COUNTY, 30.0) is None
            wait = asyncio.create_task(engine_side.shown("1733390000.3", HERE, timeout_s=30.0))
            await asyncio.sleep(0.05)
            assert not wait.done()
            await console.signal_key(seen_key(prefix, "1733390000.3"))
            # the cap is 30 s away: only the page's word ends the wait this soon
            assert await asyncio.wait_for(wait, 10) is True
            began = time.monotonic()
            assert await engine_side.shown("1733390000.4", HERE, timeout_s=0.2) is False
            assert time.monotonic() - began >= 0.2
    finally:
        await console.close()


async def test_with_redis_gone_nobody_is_waited_for(tmp_path: Path, prefix: str) -> None:
    server = RedisServer(closed_port(), tmp_path)
    await server.start()
    client = aioredis.Redis.from_url(server.url, socket_timeout=2)
    acks = Acknowledgements(client, prefix)
    regions = WatchedRegions(client, prefix, acks)
    screens = OpenScreens(client, prefix)
    try:
        with screens.opened(COUNTY):
            await screens.renew()
            await regions.refresh()
            assert regions.watched(HERE)
            server.kill()
            await regions.refresh()
            assert not regions.watched(HERE)
            assert await regions.shown("1733390000.5", HERE, timeout_s=30.0) is None
            await screens.renew()  # says so in the log, and goes on
    finally:
        await client.aclose()
        server.stop()


@pytest.mark.parametrize("text, ok", [
    ("1733390000.42", True), ("sim-17.3", True), ("", False), ("1" * 65, False),
    ("1733\r\nAction: Originate", False), ("a b", False), ("x/../y", False), ("中文", False)])
def test_a_card_shown_names_a_call_id_and_nothing_else(text: str, ok: bool) -> None:
    assert is_uniqueid(text) is ok


def test_a_console_counts_the_open_pages_that_show_a_pop(redis_client: aioredis.Redis,
                                                         prefix: str) -> None:
    screens = OpenScreens(redis_client, prefix)
    city = RegionScope.parse("city:110100")
    with screens.opened(COUNTY), screens.opened(COUNTY), screens.opened(city):
        assert screens.showing(HERE) == 3
        assert screens.showing(NEXT_COUNTY) == 1  # the city's page only
        assert screens.showing(OTHER_PROVINCE) == 0
        assert screens.showing(Place()) == screens.showing(None) == 3  # unknown: everyone
    assert screens.showing(HERE) == 0


async def test_the_console_answers_once_every_page_that_shows_the_card_has_it_on_screen(
        redis_client: aioredis.Redis, prefix: str) -> None:
    live = LiveContext(None, redis_client, prefix, screens=OpenScreens(redis_client, prefix),
                       answers=Acknowledgements(redis_client, prefix))
    assert live.screens is not None
    pop = LiveEvent("1733390000-0", "screen_pop", {"uniqueid": "1733390000.7"}, None, HERE)
    key = seen_key(prefix, "1733390000.7")
    elsewhere = RegionScope.parse("county:310101")
    with live.screens.opened(COUNTY), live.screens.opened(COUNTY):
        assert not await card_on_screen(live, COUNTY, "1733390000.7")  # not sent out yet
        card_going_out(live, pop)
        card_going_out(live, pop)  # to the second page: still two pages to hear from
        assert not await card_on_screen(live, elsewhere, "1733390000.7")  # not its region
        assert await card_on_screen(live, COUNTY, "1733390000.7")
        assert await redis_client.get(key) is None  # one of the two pages has it on screen
        assert await card_on_screen(live, COUNTY, "1733390000.7")
        assert await redis_client.get(key) == b"1"
        await redis_client.delete(key)
        card_going_out(live, pop)  # a page that joined later: said once already
        assert await card_on_screen(live, COUNTY, "1733390000.7")
        assert await redis_client.get(key) is None
    await redis_client.delete(key)


async def test_a_console_that_stops_withdraws_its_screens(
        redis_client: aioredis.Redis, prefix: str, engine_side: WatchedRegions) -> None:
    screens = OpenScreens(redis_client, prefix)
    with screens.opened(COUNTY):
        await screens.renew()
        await engine_side.refresh()
        assert engine_side.watched(HERE)
    await screens.withdraw()  # its last page closed, not yet renewed: still withdrawn
    await engine_side.refresh()
    assert not engine_side.watched(HERE)
    assert await redis_client.zcard(watchers_key(prefix)) == 0
