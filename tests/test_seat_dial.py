"""Wire-level: an operator's seat calls out only to numbers the registry knows and to
120/110/119 (engine over FastAGI, the shipped dialplan in the simulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatch.db import make_sync_engine
from dispatch.models import Vendor, VendorPhone, VendorStatus
from dispatch.phones import national
from tests.callstack import CallStack, open_stack
from tests.ports import closed_port

REFUSED = "hotline/zh/seat_dial_refused"


async def seat_call(stack: CallStack, dialled: str, seat: str = "operator1") -> dict[str, Any]:
    """A seat's softphone dials ``dialled`` (the channel lands in the seats' context)."""
    return await stack.sim.call({"number": "8001", "name": "Operator 1", "to": dialled,
                                 "context": "hotline-seats", "channel": f"PJSIP/{seat}",
                                 "language": "zh", "hangup_after": 20})


def vendor_number(stack: CallStack) -> str:
    engine = make_sync_engine(stack.db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                select(VendorPhone.number_e164)
                .join(Vendor, Vendor.id == VendorPhone.vendor_id)
                .where(Vendor.status == VendorStatus.ACTIVE)
                .order_by(VendorPhone.id).limit(1)
            ).scalar_one()
    finally:
        engine.dispose()


def dialled(result: dict[str, Any]) -> list[str]:
    return [entry["dialstring"] for entry in result["dial"]]


def heard(result: dict[str, Any]) -> list[str]:
    return [entry[1] for entry in result["heard"]]


def refused(result: dict[str, Any]) -> bool:
    return not result["dial"] and REFUSED in heard(result)


@pytest.mark.parametrize("kind", ["elders", "family", "vendor"])
async def test_a_seat_calls_a_registered_number_through_the_trunk(tmp_path: Path,
                                                                   kind: str) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=40):
        number = vendor_number(stack) if kind == "vendor" else stack.numbers[kind][0]
        digits = national(number)
        result = await seat_call(stack, digits)
        assert dialled(result) == [f"PJSIP/{digits}@trunk"]
        assert result["dial"][0]["status"] == "ANSWER"
        assert result["variables"]["HOTLINE_DIAL_ALLOWED"] == "yes"
        assert REFUSED not in heard(result)
        # the called party sees the hotline's number, not the seat's
        assert ["Set", "CALLERID(all)=12349 <12349>"] in [app[1:] for app in result["apps"]]


async def test_an_elder_dialled_in_another_form_goes_out_as_national_digits(
        tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=40):
        number = stack.numbers["elders"][1]  # +86...: dialled as 0086...
        result = await seat_call(stack, "00" + number.removeprefix("+"))
        assert dialled(result) == [f"PJSIP/{national(number)}@trunk"]


async def test_an_unknown_number_is_refused_and_never_dialled(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=40):
        result = await seat_call(stack, national(stack.numbers["unknown"][0]))
        assert refused(result)
        assert result["variables"]["HOTLINE_DIAL_ALLOWED"] == "no"
        assert result["variables"]["HOTLINE_DIAL_KIND"] == "unknown"


@pytest.mark.parametrize("suffix", ["&PJSIP/operator2", "@othertrunk", "/n", "&Local/1@default",
                                    "#", "*", "9"])
async def test_a_hostile_string_is_refused(tmp_path: Path, suffix: str) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=40):
        result = await seat_call(stack, national(stack.numbers["elders"][0]) + suffix)
        assert refused(result), result["dial"]


async def test_emergency_numbers_go_out_with_the_engine_down(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=20,
                                  agi_url=f"agi://127.0.0.1:{closed_port()}"):
        for number in ("120", "110", "119"):
            result = await seat_call(stack, number)
            assert dialled(result) == [f"PJSIP/{number}@trunk"]
            assert result["dial"][0]["status"] == "ANSWER"
        # the engine cannot vouch for anything else
        elder = await seat_call(stack, national(stack.numbers["elders"][0]))
        assert refused(elder) and elder["variables"]["AGISTATUS"] == "FAILURE"


async def test_a_seat_still_reaches_12349_and_its_colleagues(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=20):
        hotline = await seat_call(stack, "12349")
        assert [rec["script"].rsplit("/", 1)[1] for rec in hotline["agi"]] == ["inbound"]
        await stack.sim.request("register", endpoint="supervisor",
                                contact="192.168.1.30:5060", source="192.168.1.30:5060")
        colleague = await seat_call(stack, "supervisor")
        assert [(d["dialstring"], d["status"]) for d in colleague["dial"]] == [
            ("PJSIP/supervisor", "ANSWER")]
        assert not colleague["agi"]
