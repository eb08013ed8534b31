"""The trunk's priority lines on a real Redis: a priority call's note is held while it rings
and, once answered, until its channel's Hangup; a hangup seen before the answer's note frees
the line at once; a priority call finding every line taken waits for one, and dials anyway
after its wait."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from ivr.ami.messages import AmiMessage
from ivr.hangups import HangupWatch
from ivr.trunk import PriorityLines


def _hangup(uniqueid: str) -> AmiMessage:
    return AmiMessage([("Event", "Hangup"), ("Uniqueid", uniqueid), ("Cause", "16")])


def _lines(client: aioredis.Redis) -> tuple[PriorityLines, HangupWatch]:
    hangups = HangupWatch()
    return PriorityLines(client, f"t{uuid.uuid4().hex[:8]}:", hangups), hangups


async def _hang_up(hangups: HangupWatch, uniqueid: str) -> None:
    hangups.on_hangup(_hangup(uniqueid))
    await hangups.settled()


async def test_an_answered_call_holds_its_line_until_it_hangs_up(
        redis_client: aioredis.Redis) -> None:
    lines, hangups = _lines(redis_client)
    async with lines.holding(30.0, 3600.0) as line:
        assert await lines.in_use() == 1  # ringing
        line.uniqueid = "1700000000.11"
    assert await lines.in_use() == 1  # talking
    assert hangups.waiting == 1
    await _hang_up(hangups, "1700000000.99")  # another channel's hangup
    assert await lines.in_use() == 1
    await _hang_up(hangups, "1700000000.11")
    assert await lines.in_use() == 0 and hangups.waiting == 0
    async with lines.holding(30.0, 3600.0):
        pass  # not answered: freed as the block ends
    assert await lines.in_use() == 0


async def test_a_hangup_seen_before_the_answer_is_noted_frees_the_line(
        redis_client: aioredis.Redis) -> None:
    lines, hangups = _lines(redis_client)
    async with lines.holding(30.0, 3600.0) as line:
        await _hang_up(hangups, "1700000000.12")  # over before the outcome arrived
        line.uniqueid = "1700000000.12"
    assert await lines.in_use() == 0 and hangups.waiting == 0


async def test_a_priority_call_waits_for_a_free_line_then_dials(
        redis_client: aioredis.Redis) -> None:
    lines, _hangups = _lines(redis_client)
    taken = {"others": 3}  # the trunk's three lines held by calls already on them
    looked = asyncio.Event()

    async def lines_taken() -> int:
        looked.set()
        return taken["others"]

    async def place() -> None:
        async with lines.holding(30.0, 3600.0, lines_taken, trunk=3, wait_s=60.0):
            pass

    waiting = asyncio.create_task(place())
    await looked.wait()
    assert not waiting.done() and await lines.in_use() == 1  # noted while it waits
    taken["others"] = 2  # a call ended
    await asyncio.wait_for(waiting, 10)
    # every line still taken, and no wait allowed: it dials regardless
    taken["others"] = 3
    async with lines.holding(30.0, 3600.0, lines_taken, trunk=3, wait_s=0.0):
        pass
