"""Wire-level: an emergency calls the family in order until one presses 1 (AMI Originate)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatch.db import make_sync_engine
from dispatch.models import ElderPhone, FamilyContact, OrderEvent, ServiceType, WorkOrder
from dispatch.orders import create_order
from dispatch.phones import national
from tests.callstack import CallStack, open_stack
from tests.sim_phones import answers_and_presses

DEADLINE_S = 60.0


def handset_with_family(db_url: str, at_least: int) -> tuple[str, list[str]]:
    """A handset line whose elder has ``at_least`` family contacts (numbers in call order)."""
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            counts = (
                select(FamilyContact.elder_id)
                .group_by(FamilyContact.elder_id)
                .having(func.count() >= at_least)
                .subquery()
            )
            line, elder_id = conn.execute(
                select(ElderPhone.number_e164, ElderPhone.elder_id)
                .where(ElderPhone.kind == "handset", ElderPhone.elder_id.in_(select(counts)))
                .order_by(ElderPhone.id).limit(1)
            ).one()
            family = conn.execute(
                select(FamilyContact.number_e164).where(FamilyContact.elder_id == elder_id)
                .order_by(FamilyContact.priority, FamilyContact.id)
            ).scalars().all()
            return line, list(family)
    finally:
        engine.dispose()


async def escalation_events(stack: CallStack, order_no: str) -> list[tuple[str, dict]]:
    """The order's timeline once the escalation has ended."""
    rows = await stack.poll(
        select(OrderEvent.kind, OrderEvent.detail)
        .join(WorkOrder, WorkOrder.id == OrderEvent.order_id)
        .where(WorkOrder.order_no == order_no).order_by(OrderEvent.id),
        lambda rows: any(kind in ("family_acknowledged", "family_unreached")
                         for kind, _ in rows),
    )
    return [(kind, detail) for kind, detail in rows]


async def test_busy_first_contact_then_the_second_acknowledges(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=300, ami=True):
        line, family = handset_with_family(stack.db_url, 2)
        first, second = national(family[0]), national(family[1])
        await stack.sim.request("phones", phones={
            first: {"answer": "busy"},
            second: answers_and_presses(("1", 2.0)),
        })
        result = await stack.call(national(line))
        order_no = result["variables"].get("HOTLINE_ORDER_NO") or stack.record(
            result["uniqueid"])[1].order_no
        events = await escalation_events(stack, order_no)
        called = [(d["outcome"]) for kind, d in events if kind == "family_called"]
        assert called == ["busy", "answered"]
        acks = [d for kind, d in events if kind == "family_acknowledged"]
        assert len(acks) == 1


async def test_nobody_answers_and_the_alarm_stays_open(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=300, ami=True,
                                  engine_overrides={"dial": {"ring_timeout_s": 5.0}}):
        line, family = handset_with_family(stack.db_url, 1)
        await stack.sim.request("phones", phones={
            national(number): {"answer": "noanswer"} for number in family
        })
        result = await stack.call(national(line))
        _, order = stack.record(result["uniqueid"])
        events = await escalation_events(stack, order.order_no)
        called = [d["outcome"] for kind, d in events if kind == "family_called"]
        assert called == ["no_answer"] * len(family)
        assert events[-1][0] == "family_unreached"
        assert order.status == "new"  # still open for the operators


async def test_a_contact_who_hangs_up_without_the_key_is_followed_at_once(tmp_path: Path
                                                                          ) -> None:
    """The family call's own end tells the escalation (pub/sub), so the next contact is rung
    without waiting out ack_wait_s (300 s here)."""
    async for stack in open_stack("embedded", tmp_path, elders=300, ami=True,
                                  engine_overrides={"dial": {"ack_wait_s": 300.0}}):
        line, family = handset_with_family(stack.db_url, 2)
        first, second = national(family[0]), national(family[1])
        await stack.sim.request("phones", phones={
            first: {"answer": "answer", "ring_s": 1.0, "script": [{"hangup": True,
                                                                   "delay": 3.0}]},
            second: answers_and_presses(("1", 2.0), ring_s=1.0),
        })
        result = await stack.call(national(line))
        _, order = stack.record(result["uniqueid"])
        await escalation_events(stack, order.order_no)
        timeline = await stack.poll(
            select(OrderEvent.kind, OrderEvent.at, OrderEvent.detail)
            .where(OrderEvent.order_id == order.id).order_by(OrderEvent.id),
            lambda rows: True)
        no_key = [at for kind, at, _ in timeline if kind == "family_no_key"]
        called = [(at, d["outcome"]) for kind, at, d in timeline if kind == "family_called"]
        assert len(no_key) == 1 and [outcome for _, outcome in called] == ["answered"] * 2
        assert (called[1][0] - no_key[0]).total_seconds() < 100  # far below ack_wait_s
        assert [kind for kind, _, _ in timeline].count("family_acknowledged") == 1


async def test_a_step_the_database_refused_is_on_the_timeline_once_it_is_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first family call's step is refused once (the database away for a moment): the
    escalation goes on, and the step is written in the background, once, before the next
    (it was lost, and the timeline never showed that call)."""
    from sqlalchemy.exc import OperationalError

    from ivr import escalation

    stored = escalation.add_order_event
    refused: list[str] = []

    async def refused_once(session: Any, order_id: int, kind: str, *args: Any) -> None:
        if kind == "family_called" and not refused:
            refused.append(kind)
            raise OperationalError("INSERT INTO order_events", None, ConnectionError("away"))
        await stored(session, order_id, kind, *args)

    monkeypatch.setattr(escalation, "add_order_event", refused_once)
    async for stack in open_stack("embedded", tmp_path, elders=300, ami=True):
        line, family = handset_with_family(stack.db_url, 2)
        await stack.sim.request("phones", phones={
            national(family[0]): {"answer": "busy"},
            national(family[1]): answers_and_presses(("1", 2.0)),
        })
        result = await stack.call(national(line))
        order_no = result["variables"].get("HOTLINE_ORDER_NO") or stack.record(
            result["uniqueid"])[1].order_no
        events = await escalation_events(stack, order_no)
        assert refused == ["family_called"]
        assert [d["outcome"] for kind, d in events if kind == "family_called"] == [
            "busy", "answered"]


async def test_a_step_tried_again_keeps_the_escalation_lease(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A family call's step refused while the lease has little time left (its ring used the
    rest): the lease is kept through the retries, so another engine's resume pass, trying
    all the while, never takes the escalation over and rings the member again."""
    from sqlalchemy.exc import OperationalError

    from ivr import escalation
    from ivr.claims import Leases

    stored = escalation.add_order_event
    refusals = 4  # 0.1 + 0.25 + 0.5 + 1.0 s of pauses: longer than the lease left

    async def refused(session: Any, order_id: int, kind: str, *args: Any) -> None:
        nonlocal refusals
        if refusals:
            refusals -= 1
            raise OperationalError("INSERT INTO order_events", None, ConnectionError("away"))
        await stored(session, order_id, kind, *args)

    async for stack in open_stack("embedded", tmp_path, elders=20, ami=True):
        assert stack.engine is not None and stack.engine.context is not None
        family = stack.engine.escalation
        ctx = stack.engine.context
        async with ctx.sessions() as session:
            elder_id = await session.scalar(select(ElderPhone.elder_id).limit(1))
        async with ctx.writing() as session:
            order = await create_order(session, elder_id=elder_id, service=ServiceType.EMERGENCY,
                                       source="handset", call_uniqueid=None,
                                       requested_by="elder", at=ctx.now())
        lease = escalation.escalation_lease(order.id)
        assert await family.leases.claim(lease, 1.0)  # what the ring left of it
        other = Leases(family.leases._client, stack.engine.settings.redis.key_prefix)
        monkeypatch.setattr(escalation, "add_order_event", refused)
        step = asyncio.create_task(family._event(order.id, "family_called",
                                                 {"contact_id": 1, "outcome": "busy"}))
        taken_over = False
        while not step.done():  # another engine's resume pass, claiming all the while
            taken_over = taken_over or await other.claim(lease, 60.0)
            await asyncio.wait([step], timeout=0.05)
        await step
        assert refusals == 0 and not taken_over
        assert not await other.claim(lease, 60.0)  # still this engine's
