"""Micro-batching (pure logic): a lone request runs alone at once, requests made while a batch
runs are served by the next one (at most ``most`` a batch), a repeated key does its work
once, an error reaches every request of its batch, and a cancelled request harms no other."""

from __future__ import annotations

import asyncio

import pytest

from ivr.micro_batch import MicroBatch, PayloadBatch


class Doubler:
    """``run`` that answers each key with its double once released, recording its batches."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def run(self, keys: list[int]) -> dict[int, int]:
        self.batches.append(keys)
        self.started.set()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return {key: 2 * key for key in keys}


async def test_requests_made_during_a_batch_are_gathered_into_the_next() -> None:
    doubler = Doubler()
    batch = MicroBatch(doubler.run, most=10, repeat=-1)
    first = batch.request(0)
    await doubler.started.wait()
    assert doubler.batches == [[0]]  # alone, at once
    others = [batch.request(key) for key in range(1, 26)]
    repeated = batch.request(7)
    assert repeated.done() and repeated.result() == -1
    doubler.release.set()
    assert await first == 0
    assert await asyncio.gather(*others) == [2 * key for key in range(1, 26)]
    assert doubler.batches == [[0], list(range(1, 11)), list(range(11, 21)),
                               list(range(21, 26))]


async def test_an_error_reaches_its_batch_only() -> None:
    doubler = Doubler()
    batch = MicroBatch(doubler.run, most=10, repeat=-1)
    failing = [batch.request(key) for key in (1, 2, 3)]
    doubler.fail = RuntimeError("database gone")
    doubler.release.set()
    for task in failing:
        with pytest.raises(RuntimeError, match="database gone"):
            await task
    doubler.fail = None
    assert await batch.submit(4) == 8


async def test_a_cancelled_request_leaves_the_others_served() -> None:
    doubler = Doubler()
    batch = MicroBatch(doubler.run, most=10, repeat=-1)
    running = batch.request(1)
    await doubler.started.wait()
    waiting = [batch.request(key) for key in (2, 3, 4)]
    waiting[1].cancel()
    doubler.release.set()
    assert await running == 2
    assert await waiting[0] == 4 and await waiting[2] == 8
    with pytest.raises(asyncio.CancelledError):
        await waiting[1]
    assert doubler.batches == [[1], [2, 3, 4]]


async def test_close_cancels_the_batch_running_and_the_requests_waiting() -> None:
    doubler = Doubler()
    batch = MicroBatch(doubler.run, most=10, repeat=-1)
    running = batch.request(1)
    await doubler.started.wait()
    waiting = batch.request(2)
    await batch.close()
    for task in (running, waiting):
        with pytest.raises(asyncio.CancelledError):
            await task
    doubler.release.set()
    assert await batch.submit(5) == 10  # usable again


async def test_a_batch_every_waiter_left_is_abandoned_and_they_return_once_it_ended() -> None:
    doubler = Doubler()
    ended = asyncio.Event()

    async def run(keys: list[int]) -> dict[int, int]:
        try:
            return await doubler.run(keys)
        finally:
            ended.set()

    batch = MicroBatch(run, most=10, repeat=-1, abandon=True)
    waiters = [asyncio.ensure_future(batch.submit(key)) for key in (1, 2)]
    await doubler.started.wait()
    waiters[0].cancel()
    await asyncio.sleep(0)
    assert not ended.is_set()  # one waiter is left: the batch goes on
    waiters[1].cancel()
    for waiter in waiters:
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert ended.is_set()  # each returned only once its batch had ended
    doubler.release.set()
    assert await batch.submit(3) == 6  # the next batch runs


async def test_a_payload_batch_answers_each_payload_and_leaves_out_the_cut_off() -> None:
    batches: list[list[str]] = []
    release = asyncio.Event()

    async def run(payloads: list[str]) -> list[str]:
        batches.append(payloads)
        await release.wait()
        return [payload.upper() for payload in payloads]

    batch: PayloadBatch[str, str] = PayloadBatch(run, most=10)
    first = asyncio.ensure_future(batch.submit("a"))
    await asyncio.sleep(0)
    others = [asyncio.ensure_future(batch.submit(p)) for p in ("b", "c", "b")]
    await asyncio.sleep(0)
    others[1].cancel()
    release.set()
    assert await first == "A"
    assert [await others[0], await others[2]] == ["B", "B"]
    assert batches == [["a"], ["b", "b"]]
