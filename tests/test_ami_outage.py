"""Wire-level: an AMI outage never ends an emergency's family escalation. The engine's AMI
link runs through a proxy that the test cuts (both sides closed) and restores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dispatch.escalations import FINISHED
from dispatch.models import OrderEvent, ServiceType, WorkOrder
from dispatch.phones import national
from ivr.escalation import FAMILY_CONTEXT
from tests.callstack import CallStack, open_stack, until
from tests.sim_phones import answers_and_presses
from tests.test_family_escalation import handset_with_family

SPEED = 5.0
DEADLINE_S = 60.0
OVERRIDES = {"ami": {"reconnect_delay_s": 0.2}}


def link_is(stack: CallStack, up: bool) -> Callable[[], bool]:
    """Whether the engine's AMI client sees its link up (True) or down (False)."""
    assert stack.engine is not None
    ami = stack.engine.ami
    return lambda: ami.connected == up


def originated(stack: CallStack) -> Callable[[], Any]:
    return lambda: family_originates(stack)


async def family_originates(stack: CallStack) -> list[dict[str, Any]]:
    """The family calls the simulator received, in order."""
    log = (await stack.sim.request("originated"))["originated"]
    return [entry for entry in log if entry["context"] == FAMILY_CONTEXT]


async def timeline(stack: CallStack, order_no: str, done: Callable[[list[Any]], bool]
                   ) -> list[tuple[str, dict]]:
    rows = await stack.poll(
        select(OrderEvent.kind, OrderEvent.detail)
        .join(WorkOrder, WorkOrder.id == OrderEvent.order_id)
        .where(WorkOrder.order_no == order_no).order_by(OrderEvent.id), done)
    return [(kind, detail or {}) for kind, detail in rows]


def ended(rows: list[Any]) -> bool:
    return any(kind in FINISHED for kind, _ in rows)


async def emergency_order_no(stack: CallStack, line: str) -> str:
    """The emergency order of the handset call from ``line`` (opened before the queue)."""
    rows = await stack.poll(
        select(WorkOrder.order_no).where(WorkOrder.service == ServiceType.EMERGENCY)
        .order_by(WorkOrder.id.desc()), lambda rows: bool(rows))
    assert rows, f"no emergency order for {line}"
    return rows[0][0]


async def test_a_cut_during_the_first_ring_keeps_the_escalation_and_honours_the_late_ack(
        tmp_path: Path) -> None:
    """The link drops while contact 1 rings: contacts 2 and 3 are not written off as
    "failed", nothing says "unreached", and contact 1's key 1 ends the escalation."""
    async for stack in open_stack("embedded", tmp_path, elders=300, speed=SPEED, ami=True,
                                  ami_proxy=True, engine_overrides=OVERRIDES):
        assert stack.engine is not None and stack.ami_proxy is not None
        line, family = handset_with_family(stack.db_url, 3)
        first = national(family[0])
        await stack.sim.request("phones", phones={
            first: answers_and_presses(("1", 2.0), ring_s=20.0),
            **{national(number): answers_and_presses(("1", 1.0), ring_s=1.0)
               for number in family[1:3]},
        })
        call = asyncio.create_task(stack.call(national(line)))
        await until(originated(stack), "contact 1's Originate at the simulator")
        await stack.ami_proxy.cut()
        await until(link_is(stack, False), "the engine to see the cut")
        stack.ami_proxy.restore()
        await until(link_is(stack, True), "the link to return")
        order_no = await emergency_order_no(stack, line)
        # the key may be stored before the call's late result: wait for both
        events = await timeline(stack, order_no, lambda rows: ended(rows) and any(
            kind == "family_called" for kind, _ in rows))
        await call
        kinds = [kind for kind, _ in events]
        assert "family_unreached" not in kinds, events
        assert kinds.count("family_acknowledged") == 1, events
        called = [d["outcome"] for kind, d in events if kind == "family_called"]
        assert called == ["answered"], events  # contact 1, whose answer came after the cut
        assert [national(family[0]) in entry["channel"]
                for entry in await family_originates(stack)] == [True]


async def test_an_emergency_during_a_cut_calls_the_family_when_the_link_returns(
        tmp_path: Path) -> None:
    """An emergency that starts while the link is down: no contact is written off, the
    escalation waits, every contact is called once the link is back, and the third one's
    key 1 acknowledges it."""
    async for stack in open_stack("embedded", tmp_path, elders=300, speed=SPEED, ami=True,
                                  ami_proxy=True, engine_overrides=OVERRIDES):
        assert stack.engine is not None and stack.ami_proxy is not None
        line, family = handset_with_family(stack.db_url, 3)
        numbers = [national(number) for number in family[:3]]
        await stack.sim.request("phones", phones={
            numbers[0]: {"answer": "busy"}, numbers[1]: {"answer": "busy"},
            numbers[2]: answers_and_presses(("1", 1.0), ring_s=1.0),
        })
        await stack.ami_proxy.cut()
        await until(link_is(stack, False), "the engine to see the cut")
        call = asyncio.create_task(stack.call(national(line)))
        order_no = await emergency_order_no(stack, line)
        during = await timeline(stack, order_no, lambda rows: ended(rows) or any(
            kind == "family_not_called" for kind, _ in rows))
        assert not ended(during), during
        assert [kind for kind, _ in during if kind == "family_called"] == [], during
        assert await family_originates(stack) == []
        stack.ami_proxy.restore()
        events = await timeline(stack, order_no, ended)
        await call
        kinds = [kind for kind, _ in events]
        assert "family_unreached" not in kinds and kinds.count("family_acknowledged") == 1, events
        called = [d["outcome"] for kind, d in events if kind == "family_called"]
        assert called == ["busy", "busy", "answered"], events
        channels = [entry["channel"] for entry in await family_originates(stack)]
        assert len(channels) == 3
        assert all(number in channel for number, channel in zip(numbers, channels, strict=True))


async def test_a_line_whose_hangup_the_cut_hid_is_released_when_the_link_returns(
        tmp_path: Path) -> None:
    """A call holding a line hangs up while the link is down, so its ``Hangup`` never
    reaches the engine: once the link is back the engine lists the PBX's channels, finds the
    call gone and releases the line. Without that the line would stay taken until its lapse
    and the emergencies after the outage would wait for lines nobody uses."""
    async for stack in open_stack("embedded", tmp_path, elders=300, speed=SPEED, ami=True,
                                  ami_proxy=True, engine_overrides=OVERRIDES):
        await _hangup_during_a_cut(stack)


async def _hangup_during_a_cut(stack: CallStack) -> None:
    assert stack.engine is not None and stack.ami_proxy is not None
    assert stack.engine.context is not None
    hangups = stack.engine.context.hangups
    await until(link_is(stack, True), "the engine's AMI link")
    call = asyncio.create_task(stack.call(stack.numbers["elders"][0], hangup_after=20.0))
    channels = await until(lambda: _live_channels(stack), "the call's channel")
    released = asyncio.Event()

    async def release() -> None:
        released.set()

    hangups.when_hung_up(channels[0], "test", release)
    await stack.ami_proxy.cut()
    await until(link_is(stack, False), "the engine to see the cut")
    await call  # it hung up while the engine could not hear it
    assert not released.is_set() and hangups.waiting == 1
    stack.ami_proxy.restore()
    await until(released.is_set, "the line released after the link came back")
    assert hangups.waiting == 0


async def _live_channels(stack: CallStack) -> list[str]:
    return [channel["uniqueid"]
            for channel in (await stack.sim.request("channels"))["channels"]]
