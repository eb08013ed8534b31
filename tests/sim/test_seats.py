"""Seats in the simulator as on Asterisk 22: a softphone behind NAT is reachable only when
res_pjsip_nat.so rewrites its Contact, an unreachable or unregistered seat is Unavailable
(no Dial rings it, its busy lamp says so), and every shipped seat has a hint."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sim.conf import read_sections
from sim.dialplan.parser import DialplanError, load, parse_text
from tests.simharness import ROOT, SimProcess, start_sim

CONF = ROOT / "asterisk_conf"
# a softphone on a LAN behind NAT: it says 192.168.1.20:5060, its packets come from the router
BEHIND_NAT = {"contact": "192.168.1.20:5060", "source": "203.0.113.7:40123"}
IDLE, UNAVAILABLE = 0, 4


def conf_without(folder: Path, module: str) -> Path:
    """A copy of the shipped configuration whose modules.conf does not load ``module``."""
    target = folder / "asterisk"
    shutil.copytree(CONF, target, symlinks=False)
    modules = target / "modules.conf"
    lines = modules.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if module not in line]
    assert len(kept) == len(lines) - 1
    modules.write_text("".join(kept), encoding="utf-8")
    return target


@asynccontextmanager
async def pbx(conf: Path) -> AsyncIterator[SimProcess]:
    async with start_sim([conf / "extensions.conf"], speed=50) as sim:
        yield sim


async def colleague_call(sim: SimProcess, seat: str) -> dict[str, Any]:
    """The supervisor's phone calls ``seat`` by name."""
    return await sim.call({"number": "8000", "to": seat, "context": "hotline-seats",
                           "channel": "PJSIP/supervisor", "hangup_after": 5})


async def test_a_seat_behind_nat_is_reachable_with_res_pjsip_nat() -> None:
    async with pbx(CONF) as sim:
        reply = await sim.request("register", endpoint="operator1", **BEHIND_NAT)
        assert reply["status"] == 200
        assert reply["contact"] == BEHIND_NAT["source"] and reply["reachable"]
        state = await sim.request("seats")
        assert state["seats"]["operator1"]["device_state"] == "NOT_INUSE"
        assert state["hints"]["operator1"] == IDLE
        result = await colleague_call(sim, "operator1")
        assert [(d["dialstring"], d["status"]) for d in result["dial"]] == [
            ("PJSIP/operator1", "ANSWER")]


async def test_without_res_pjsip_nat_the_contact_is_kept_and_the_seat_never_rings(
        tmp_path: Path) -> None:
    async with pbx(conf_without(tmp_path, "res_pjsip_nat.so")) as sim:
        reply = await sim.request("register", endpoint="operator1", **BEHIND_NAT)
        assert reply["status"] == 200
        assert reply["contact"] == BEHIND_NAT["contact"] and not reply["reachable"]
        state = await sim.request("seats")
        assert state["seats"]["operator1"]["device_state"] == "UNAVAILABLE"
        assert state["hints"]["operator1"] == UNAVAILABLE
        result = await colleague_call(sim, "operator1")
        assert [(d["dialstring"], d["status"]) for d in result["dial"]] == [
            ("PJSIP/operator1", "CHANUNAVAIL")]
        # a softphone that is not behind NAT needs no rewriting
        same = {"contact": "192.168.1.21:5060", "source": "192.168.1.21:5060"}
        assert (await sim.request("register", endpoint="operator2", **same))["reachable"]
        assert (await sim.request("seats"))["hints"]["operator2"] == IDLE


async def test_unregistered_and_unknown_seats() -> None:
    async with pbx(CONF) as sim:
        state = await sim.request("seats")
        assert {name: seat["device_state"] for name, seat in state["seats"].items()} == {
            "operator1": "UNAVAILABLE", "operator2": "UNAVAILABLE", "supervisor": "UNAVAILABLE"}
        assert (await sim.request("register", endpoint="intruder", **BEHIND_NAT))["status"] \
            == 403
        bad = await sim.raw({"op": "register", "endpoint": "operator1",
                             "contact": "x;transport=tcp", "source": "1.2.3.4:5"})
        assert not bad["ok"] and "host:port" in bad["error"]


async def seat_talking(sim: SimProcess, seat: str, timeout_s: float = 30.0) -> bool:
    """Read the PBX's channels until ``seat`` has one that is Up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        channels = (await sim.request("channels"))["channels"]
        if any(c["name"].startswith(f"PJSIP/{seat}-") and c["state"] == "Up"
               for c in channels):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_seat_on_a_call_shows_busy_on_the_lamps() -> None:
    async with pbx(CONF) as sim:
        await sim.request("register", endpoint="operator1", **BEHIND_NAT)
        await sim.request("phones", phones={"120": {"ring_s": 1, "hangup_after": None}})
        call = asyncio.ensure_future(sim.call({
            "number": "8001", "to": "120", "context": "hotline-seats",
            "channel": "PJSIP/operator1", "hangup_after": 300}))
        assert await seat_talking(sim, "operator1")
        state = await sim.request("seats")
        assert state["seats"]["operator1"]["device_state"] == "BUSY"  # device_state_busy_at=1
        assert state["hints"]["operator1"] == 2
        result = await call
        assert result["dial"][0]["status"] == "ANSWER"
        assert (await sim.request("seats"))["hints"]["operator1"] == IDLE


def test_every_shipped_seat_has_a_hint_in_its_context() -> None:
    plan = load([CONF / "extensions.conf"])
    endpoints = [s for s in read_sections(CONF / "pjsip.conf")
                 if not s.template and s.options.get("type") == "endpoint"]
    assert endpoints
    for seat in endpoints:
        assert plan.hint(seat.options["context"], seat.name) == f"PJSIP/{seat.name}", seat.name


def test_hints_are_parsed_and_found_through_includes() -> None:
    plan = parse_text("[a]\ninclude => b\n[b]\nexten => 7,hint,PJSIP/seven&Custom:x\n"
                      "exten => 7,1,NoOp()\n")
    assert plan.hint("a", "7") == "PJSIP/seven&Custom:x"
    assert plan.find("a", "7") is not None and plan.hint("a", "8") is None
    with pytest.raises(DialplanError):
        parse_text("[a]\nexten => 7,hint,\n")
