"""Wire-level: click-to-call rings the operator's seat first (AMI Originate of
``PJSIP/<seat>`` into ``[hotline-seat-dial]``), then the elder's number goes through the
engine's seat_dial check; bad numbers never reach AMI; every attempt is on the order's
timeline and the audit log (engine and simulator over real TCP, the shipped dialplan)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatch.audit import Actor
from dispatch.db import async_sessionmaker_for, make_async_engine, make_sync_engine
from dispatch.models import AuditEntry, ElderPhone, OrderEvent, ServiceType
from dispatch.orders import create_order
from dispatch.phones import national
from ivr.click_to_call import CallBackError, blocked_reason, call_back_once, seat_exten
from tests.callstack import CallStack, open_stack, until
from tests.storage import rows

ACTOR = Actor(None, "op-test", "127.0.0.1")
REFUSED = "hotline/zh/seat_dial_refused"


def elder_of(db_url: str, number: str) -> int:
    (elder_id,), = rows(db_url, select(ElderPhone.elder_id)
                        .where(ElderPhone.number_e164 == number))
    return int(elder_id)


async def new_order(stack: CallStack, elder_id: int) -> str:
    engine = make_async_engine(stack.db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            order = await create_order(session, elder_id=elder_id, service=ServiceType.HOUSEKEEPING,
                                       source="operator", call_uniqueid=None,
                                       requested_by="op-test", at=datetime.now(UTC))
        assert order.order_no is not None
        return order.order_no
    finally:
        await engine.dispose()


def recorded(db_url: str) -> tuple[list[dict[str, Any]], list[AuditEntry]]:
    """The ``called_back`` events' details and the ``call_back`` audit rows."""
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            events = conn.execute(select(OrderEvent.detail).where(
                OrderEvent.kind == "called_back").order_by(OrderEvent.id)).scalars().all()
            audit = conn.execute(select(AuditEntry).where(
                AuditEntry.action == "call_back").order_by(AuditEntry.id)).all()
            return list(events), list(audit)
    finally:
        engine.dispose()


async def originated(stack: CallStack) -> list[dict[str, Any]]:
    """The calls Originated into the seats' dialing context (the engine offers the test's
    order to vendors meanwhile: those are not counted)."""
    return [record for record in (await stack.sim.request("originated"))["originated"]
            if record["context"] == "hotline-seat-dial"]


async def test_the_seat_rings_first_then_the_elder_is_dialled(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=40, ami=True):
        number = stack.numbers["elders"][0]
        digits = national(number)
        order_no = await new_order(stack, elder_of(stack.db_url, number))
        # a seat whose softphone is not registered cannot ring: nothing is dialled
        result = await call_back_once(stack.settings, ACTOR, "operator1", digits, order_no)
        assert (result.outcome, result.status) == ("failed", "failed")
        await register(stack, "operator1")
        result = await call_back_once(stack.settings, ACTOR, "operator1", digits, order_no)
        assert (result.outcome, result.status) == ("rung", "answered")
        [unregistered, placed] = await originated(stack)
        assert unregistered["dial"] == []
        # the seat's own softphone is the Originate's channel: it rings first ...
        assert (placed["channel"], placed["context"], placed["exten"]) == (
            "PJSIP/operator1", "hotline-seat-dial", digits)
        # ... and once answered it dials the elder, after the engine's seat_dial check
        dials = await until(lambda s=stack: _answered_dials(s), "the seat's Dial answered")
        assert [(d["dialstring"], d["status"]) for d in dials] == [
            (f"PJSIP/{digits}@trunk", "ANSWER")]
        events, audit = recorded(stack.db_url)
        assert [(e["seat"], e["outcome"], e["status"]) for e in events] == [
            ("operator1", "failed", "failed"), ("operator1", "rung", "answered")]
        assert digits not in str(events)  # the number is masked on the timeline
        assert [(a.account_name, a.target) for a in audit] == [("op-test", order_no)] * 2


async def register(stack: CallStack, seat: str) -> None:
    """The seat's softphone registers (the shipped pjsip.conf's endpoint)."""
    await stack.sim.request("register", endpoint=seat, contact="192.168.1.21:5060",
                            source="192.168.1.21:5060")


async def _dials(stack: CallStack) -> list[dict[str, Any]]:
    return [d for record in await originated(stack) for d in record["dial"]]


async def _answered_dials(stack: CallStack) -> list[dict[str, Any]]:
    return [d for d in await _dials(stack) if d["answered_at"] is not None]


@pytest.mark.parametrize("hostile", ["13800138000&PJSIP/operator2", "1380013,8000",
                                     "13800138000\r\nAction: Hangup", "PJSIP/13800138000@trunk",
                                     "", "+86 138 0013 8000"])
def test_a_hostile_number_is_refused_before_ami(hostile: str) -> None:
    with pytest.raises(CallBackError):
        seat_exten(hostile, "10")


def test_an_account_without_a_seat_or_a_console_without_ami_is_told_why() -> None:
    assert blocked_reason("op1001", True) is None
    assert "no softphone seat" in (blocked_reason(None, True) or "")
    assert "no softphone seat" in (blocked_reason("", False) or "")
    assert "AMI is off" in (blocked_reason("op1001", False) or "")


async def test_refusals_and_an_unreachable_asterisk_are_named(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=40, ami=True):
        number = stack.numbers["elders"][0]
        order_no = await new_order(stack, elder_of(stack.db_url, number))
        # dial-string syntax, CR/LF, a bad seat: refused, and nothing reaches AMI
        for seat, dialled in (("operator1", national(number) + "&PJSIP/operator2"),
                              ("operator1", national(number) + "\r\nAction: Hangup"),
                              ("operator1", "1380013,8000"),
                              ("operator1&PJSIP/operator2", national(number)),
                              (None, national(number))):
            with pytest.raises(CallBackError):
                await call_back_once(stack.settings, ACTOR, seat, dialled, order_no)
        assert await originated(stack) == []
        assert recorded(stack.db_url) == ([], [])
        await register(stack, "operator1")
        # a number the registry does not know: the seat rings, the engine's check refuses it
        # (through ``hotline call``, the command line's verb for the same service)
        unknown = national(stack.numbers["unknown"][0])
        code, out, err = await hotline_call(stack, unknown, "--seat", "operator1",
                                            "--order", order_no)
        assert (code, json.loads(out)["outcome"]) == (0, "rung"), err
        code, out, err = await hotline_call(stack, unknown + "&PJSIP/operator2", "--seat",
                                            "operator1")
        assert code == 1 and "plain digits" in err and not out
        heard = await until(lambda s=stack: _heard_refusal(s), "the refusal on the seat")
        assert heard and await _dials(stack) == []
        # Asterisk out of reach: named, and on the timeline
        down = stack.settings.model_copy(deep=True)
        down.ami.port = _closed_port()
        result = await call_back_once(down, ACTOR, "operator1", national(number), order_no)
        assert result.outcome == "ami_unreachable" and result.error
        events, audit = recorded(stack.db_url)
        assert [e["outcome"] for e in events] == ["rung", "ami_unreachable"]
        assert len(audit) == 2


async def hotline_call(stack: CallStack, *args: str) -> tuple[int, str, str]:
    """``hotline call ARGS`` against the running PBX: exit code, stdout, stderr."""
    env = {**os.environ, "HOTLINE_DATABASE__URL": stack.db_url,
           "HOTLINE_AMI__PORT": str(stack.sim.ami_port),
           "HOTLINE_AMI__SECRET": stack.sim.ami_secret, "HOTLINE_CONFIG": ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.cli", "call", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return int(process.returncode or 0), out.decode(), err.decode(errors="replace")


async def _heard_refusal(stack: CallStack) -> bool:
    return any(REFUSED in record["heard"] for record in await originated(stack))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
