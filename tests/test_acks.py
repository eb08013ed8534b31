"""Family answers between engine processes, over a real Redis server (pub/sub and keys)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ivr.acks import Acknowledgements


def _first_read(board: Acknowledgements) -> asyncio.Event:
    """Set once ``board``'s waiter has looked for a recorded answer (and is about to wait):
    an answer given after that can reach it only by the announcement or the recheck."""
    done = asyncio.Event()
    recorded = board._recorded

    async def reading(key: str) -> str | None:
        try:
            return await recorded(key)
        finally:
            done.set()

    board._recorded = reading  # type: ignore[method-assign]
    return done


@pytest.fixture
async def two_processes(redis_client: aioredis.Redis
                        ) -> AsyncIterator[tuple[Acknowledgements, Acknowledgements]]:
    """Two engines' boards on one Redis, as two engine processes would have them."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    waiting, answering = (Acknowledgements(redis_client, prefix, recheck_s=30.0),
                          Acknowledgements(redis_client, prefix, recheck_s=30.0))
    waiting.start()
    await asyncio.wait_for(waiting.subscribed.wait(), 10)
    yield waiting, answering
    await waiting.close()
    await answering.close()


@pytest.mark.parametrize("pressed", [True, False])
async def test_an_answer_in_another_process_wakes_the_waiter(
        two_processes: tuple[Acknowledgements, Acknowledgements], pressed: bool) -> None:
    waiting, answering = two_processes
    read = _first_read(waiting)
    wait = asyncio.create_task(waiting.wait(7, 3, timeout_s=20.0))
    await asyncio.wait_for(read.wait(), 10)  # the waiter found no answer in Redis
    assert not wait.done()
    await answering.signal(7, 3, pressed)
    # the recheck is 30 s away: only the pub/sub message can end the wait this soon
    assert await asyncio.wait_for(wait, 10.0) is pressed


async def test_an_answer_given_before_the_wait_is_read_from_redis(
        two_processes: tuple[Acknowledgements, Acknowledgements]) -> None:
    waiting, answering = two_processes
    await answering.signal(8, 1, True)
    assert await waiting.wait(8, 1, timeout_s=5.0) is True


async def test_a_missed_announcement_is_found_by_the_recheck(redis_client: aioredis.Redis
                                                             ) -> None:
    board = Acknowledgements(redis_client, f"t{uuid.uuid4().hex[:8]}:", recheck_s=0.2)
    read = _first_read(board)
    wait = asyncio.create_task(board.wait(9, 2, timeout_s=20.0))  # no listener running
    await asyncio.wait_for(read.wait(), 10)
    await redis_client.set(board.key(9, 2), "1")
    assert await asyncio.wait_for(wait, 10.0) is True


async def test_no_answer_ends_the_wait_false(
        two_processes: tuple[Acknowledgements, Acknowledgements]) -> None:
    waiting, _ = two_processes
    assert await waiting.wait(10, 1, timeout_s=0.3) is False


async def test_redis_down_still_wakes_a_waiter_in_the_same_process() -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    board = Acknowledgements(dead, "t:", recheck_s=30.0)
    read = _first_read(board)
    wait = asyncio.create_task(board.wait(11, 4, timeout_s=20.0))
    await asyncio.wait_for(read.wait(), 10)  # Redis failed the read: the waiter waits on
    await board.signal(11, 4, True)
    assert await asyncio.wait_for(wait, 10.0) is True
    await dead.aclose()
