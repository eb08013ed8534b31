"""The trunk's priority lines on a real Redis: a priority call's note is held while it rings
and, once answered, until its channel's Hangup; a hangup seen before the answer's note frees
the line at once; a priority call finding every line taken waits for one, and dials anyway
after its wait."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from ivr.ami.messages import AmiMessage
from ivr.hangups import HangupWatch
from ivr.trunk import PriorityLines, SharedCount, Waiter, turns


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

    async def count() -> int:
        looked.set()
        return taken["others"]

    lines_taken = SharedCount(count, fresh_s=0.0)

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


async def test_a_call_that_must_wait_for_a_line_says_so_once(
        redis_client: aioredis.Redis) -> None:
    lines, _hangups = _lines(redis_client)
    taken = {"others": 3}
    said: list[str] = []

    async def count() -> int:
        return taken["others"]

    async def on_wait() -> None:  # the escalation writes it on the order's timeline
        said.append("waiting")
        taken["others"] = 2  # and then a call ends

    lines_taken = SharedCount(count, fresh_s=0.0)
    async with lines.holding(30.0, 3600.0, lines_taken, trunk=3, wait_s=60.0,
                             on_wait=on_wait):
        assert said == ["waiting"]
    async with lines.holding(30.0, 3600.0, lines_taken, trunk=3, wait_s=60.0,
                             on_wait=on_wait):
        pass  # a line was free at the first look: nothing to say
    assert said == ["waiting"]


async def test_waiting_calls_share_one_count_of_the_trunk() -> None:
    made = 0
    release = asyncio.Event()

    async def count() -> int:
        nonlocal made
        made += 1
        await release.wait()
        return 7

    shared = SharedCount(count, fresh_s=3600.0)
    waiters = [asyncio.create_task(shared()) for _ in range(200)]
    await asyncio.sleep(0)  # every waiter has asked
    release.set()
    assert await asyncio.gather(*waiters) == [7] * 200
    assert await shared() == 7 and made == 1  # fresh: reused


async def test_a_call_noted_after_a_count_began_waits_for_a_count_begun_after_its_note(
        ) -> None:
    """A claim may commit while a count is on its way: a priority call noted after that
    count began must not take it for the trunk's state, or both take the last line."""
    rows = {"on_line": 59}
    first_read = asyncio.Event()
    release = asyncio.Event()

    async def count() -> int:
        seen = rows["on_line"]
        first_read.set()
        await release.wait()
        return seen

    shared = SharedCount(count, fresh_s=3600.0)
    early = asyncio.create_task(shared())
    await first_read.wait()
    rows["on_line"] = 60  # a claim commits; then a priority call notes itself
    noted = time.monotonic()
    late = asyncio.create_task(shared(noted))
    release.set()
    assert await early == 59
    assert await late == 60
    assert await shared(noted) == 60  # the newer count, fresh, is reused from here on
    assert await shared() == 60


async def test_a_count_that_fails_tells_every_waiter_and_the_next_look_counts_again() -> None:
    results = iter([RuntimeError("database gone"), 4])

    async def count() -> int:
        result = next(results)
        if isinstance(result, Exception):
            raise result
        return result

    shared = SharedCount(count, fresh_s=0.0)
    failed = await asyncio.gather(shared(), shared(), return_exceptions=True)
    assert [type(f) for f in failed] == [RuntimeError, RuntimeError]
    assert await shared() == 4


async def test_closing_cancels_a_count_in_progress() -> None:
    started = asyncio.Event()

    async def count() -> int:
        started.set()
        await asyncio.Event().wait()  # never answers
        return 0

    shared = SharedCount(count)
    waiter = asyncio.create_task(shared())
    await started.wait()
    await shared.close()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
            and t is not waiter] == []
    waiter.cancel()


async def test_waiting_priority_calls_take_freed_lines_first_come_first_served(
        redis_client: aioredis.Redis) -> None:
    """Two lines, both taken by talking priority calls; three more wait. Each line that
    frees goes to the call that has waited longest, at once: none waits for its whole
    wait because more calls wait than there are lines."""
    lines, hangups = _lines(redis_client)
    for uniqueid in ("1700000000.1", "1700000000.2"):  # talking
        async with lines.holding(30.0, 3600.0) as talking:
            talking.uniqueid = uniqueid
    none_else = SharedCount(_nothing, fresh_s=0.0)
    order: list[int] = []

    async def place(n: int) -> None:
        async with lines.holding(30.0, 3600.0, none_else, trunk=2, wait_s=600.0) as line:
            order.append(n)
            line.uniqueid = f"1700000001.{n}"  # answered: it holds its line until it hangs up

    waiting = []
    for n in range(3):  # each noted as waiting before the next one starts
        waiting.append(asyncio.create_task(place(n)))
        await _until(lambda: redis_client.zcard(lines.waiting_key), n + 1)
    for freed, turn in (("1700000000.1", 0), ("1700000000.2", 1), ("1700000001.0", 2)):
        await _hang_up(hangups, freed)
        await asyncio.wait_for(waiting[turn], 10)
        assert order == list(range(turn + 1))  # the longest waiting, and it alone
    assert await redis_client.zcard(lines.waiting_key) == 0


async def _nothing() -> int:
    return 0


async def _until(count: Callable[[], Awaitable[int]], wanted: int) -> None:
    """Until ``count()`` reaches ``wanted`` (each look yields to the waiters' loops)."""
    while await count() != wanted:
        await asyncio.sleep(0.01)


def test_calls_past_their_wait_dial_one_a_look_oldest_first() -> None:
    """Every line taken and three calls past their wait: one dials a look, the one that has
    waited longest first; a call whose turn comes goes at once, past its wait or not."""
    loop = asyncio.new_event_loop()
    try:
        waiters = [Waiter(name, noted, noted + 30.0, loop.create_future(), loop.create_future())
                   for name, noted in (("b", 2.0), ("a", 1.0), ("c", 3.0))]
        first = ["a", "b", "c"]  # every engine's queue, oldest first
        going, overdue = turns(waiters, first, free=0, now=100.0)
        assert going == [] and [w.member for w in overdue] == ["a"]
        left = [w for w in waiters if w.member != "a"]
        going, overdue = turns(left, first[1:], free=0, now=100.2)
        assert going == [] and [w.member for w in overdue] == ["b"]
        going, overdue = turns(left, first[1:], free=2, now=100.4)
        assert [w.member for w in going] == ["b", "c"] and overdue == []
        going, overdue = turns(left, first[1:], free=0, now=10.0)  # within their wait
        assert going == [] and overdue == []
    finally:
        loop.close()
