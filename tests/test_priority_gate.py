"""The priority gate: at most its slots held at once (one for SQLite's writer), an urgent
holder before the background ones already waiting, first come first served among equals,
and a waiter cancelled (or cancelled just as it was handed a slot) never leaves it shut."""

from __future__ import annotations

import asyncio

import pytest

from ivr.priority_gate import PriorityGate


async def _take(gate: PriorityGate, name: str, order: list[str], release: asyncio.Event,
                 urgent: bool = False) -> None:
    async with gate.hold(urgent):
        order.append(name)
        await release.wait()


async def _queued(gate: PriorityGate, count: int) -> None:
    """Until ``count`` writers wait (each queued by its own turn, not by a sleep)."""
    async with asyncio.timeout(10):  # a gate that never queues them fails, not hangs
        while len(gate._waiting) < count:
            await asyncio.sleep(0)


async def _holder_and_two_waiting(gate: PriorityGate, order: list[str], release: asyncio.Event
                                  ) -> tuple[asyncio.Task[None], ...]:
    """The gate held by "holder", with "first" then "second" waiting for it."""
    holder = asyncio.create_task(_take(gate, "holder", order, release))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(_take(gate, name, order, release))
               for name in ("first", "second")]
    await _queued(gate, 2)
    return holder, *waiting


@pytest.mark.parametrize("slots", [1, 2])
async def test_an_urgent_holder_goes_before_the_background_ones_waiting(slots: int) -> None:
    gate, order, release = PriorityGate(slots), [], asyncio.Event()
    holders = [asyncio.create_task(_take(gate, f"h{i}", order, release)) for i in range(slots)]
    await asyncio.sleep(0)
    background = [asyncio.create_task(_take(gate, f"bg{i}", order, release)) for i in range(3)]
    await _queued(gate, 3)
    urgent = asyncio.create_task(_take(gate, "urgent", order, release, urgent=True))
    await _queued(gate, 4)
    release.set()
    await asyncio.gather(*holders, *background, urgent)
    assert order[:slots + 1] == [f"h{i}" for i in range(slots)] + ["urgent"]
    assert order[slots + 1:] == ["bg0", "bg1", "bg2"]
    assert gate._inside == 0 and not gate._waiting


async def test_only_one_writer_holds_the_gate() -> None:
    gate, inside, most = PriorityGate(), 0, 0

    async def write(urgent: bool) -> None:
        nonlocal inside, most
        async with gate.hold(urgent):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(write(i % 3 == 0) for i in range(50)))
    assert most == 1 and gate._inside == 0


async def test_a_cancelled_waiter_leaves_the_gate_to_the_next() -> None:
    gate, order, release = PriorityGate(), [], asyncio.Event()
    holder, gone, after = await _holder_and_two_waiting(gate, order, release)
    gone.cancel()
    release.set()
    await asyncio.gather(holder, after)
    assert order == ["holder", "second"] and gone.cancelled()
    assert gate._inside == 0 and not gate._waiting


async def test_a_waiter_cancelled_as_it_is_handed_the_gate_hands_it_on() -> None:
    gate, order, release = PriorityGate(), [], asyncio.Event()
    holder, handed, last = await _holder_and_two_waiting(gate, order, release)
    release.set()
    await asyncio.sleep(0)  # the holder leaves and hands the gate to ...
    while not holder.done():
        await asyncio.sleep(0)
    handed.cancel()  # ... "first", which is cancelled before it runs
    await asyncio.gather(last)
    assert order == ["holder", "second"] and handed.cancelled()
    assert gate._inside == 0


async def test_a_gate_of_several_slots_lets_that_many_in_and_no_more() -> None:
    gate, inside, most = PriorityGate(slots=4), 0, 0
    release = asyncio.Event()

    async def hold(urgent: bool) -> None:
        nonlocal inside, most
        async with gate.hold(urgent):
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    holders = [asyncio.create_task(hold(i % 5 == 0)) for i in range(30)]
    await _queued(gate, 26)
    assert inside == 4 and gate.waiting == 26
    release.set()
    await asyncio.gather(*holders)
    assert most == 4 and gate._inside == 0 and not gate._waiting


def test_a_gate_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        PriorityGate(slots=0)
