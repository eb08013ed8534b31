"""The queue follows the seats' registrations as app_queue follows device state: an operator
whose seat registered from behind NAT, with no res_pjsip_nat.so to rewrite its Contact, is
Unavailable and never rung (another member answers); with the module it is rung and answers.
An unreachable seat also counts as empty for joinempty."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.sim.conftest import DIALPLANS
from tests.sim.test_ami_manager_conf import sim_with
from tests.sim.test_seats import BEHIND_NAT, CONF, conf_without
from tests.sim_ami.rawclient import Message, RawAmi

PLAN = DIALPLANS / "queue.conf"
SEAT = {"name": "operator1", "answer_delay_s": 1, "talk_s": 2}  # PJSIP/operator1 of pjsip.conf
COLLEAGUE = {"name": "op2", "answer_delay_s": 3, "talk_s": 2}  # not a seat: scripted


def options(conf: Path) -> list[str]:
    return ["--pjsip-conf", str(conf / "pjsip.conf"), "--queues-conf", str(conf / "queues.conf"),
            "--global", "QTIMEOUT=30"]


async def queue_call(sim: Any, ami: RawAmi, number: str) -> tuple[dict, list[Message]]:
    """A caller in the [operators] queue; its result and the queue's events until it ends."""
    await ami.send(("Action", "Events"), ("EventMask", "agent"))
    await ami.read()
    call = asyncio.create_task(sim.call({"number": number, "to": "normal",
                                         "context": "queue-entry"}))
    seen: list[Message] = []
    while not any(m.get("Event") in ("AgentComplete", "QueueCallerLeave") and
                  m.get("CallerIDNum") == number for m in seen):
        seen.append(await ami.read(timeout=30))
    return await call, seen


def rung(seen: list[Message]) -> list[str]:
    return [m.get("Interface") for m in seen if m.get("Event") == "AgentCalled"]


async def test_a_seat_behind_nat_without_res_pjsip_nat_is_never_rung(tmp_path: Path) -> None:
    conf = conf_without(tmp_path, "res_pjsip_nat.so")
    async with sim_with(PLAN, *options(conf)) as (sim, ami):
        assert (await sim.request("register", endpoint="operator1", **BEHIND_NAT))["status"] \
            == 200
        await sim.request("operators", operators=[SEAT, COLLEAGUE])
        result, seen = await queue_call(sim, ami, "13800000011")
        status = await ami.request(("Action", "QueueStatus"), ("Queue", "operators"),
                                   ("Member", "PJSIP/operator1"))
        member = await ami.read_until(lambda m: m.get("Event") == "QueueMember")
    assert rung(seen) == ["PJSIP/op2"]
    assert result["queue"]["operator"] == "op2"
    assert status.get("Response") == "Success"
    assert member.get("Status") == "5"  # AST_DEVICE_UNAVAILABLE


async def test_with_res_pjsip_nat_the_seat_is_rung_and_answers() -> None:
    async with sim_with(PLAN, *options(CONF)) as (sim, ami):
        await sim.request("register", endpoint="operator1", **BEHIND_NAT)
        await sim.request("operators", operators=[SEAT, COLLEAGUE])
        result, seen = await queue_call(sim, ami, "13800000012")
    assert rung(seen) == ["PJSIP/operator1"]
    assert result["queue"]["operator"] == "operator1"


async def test_an_unreachable_seat_counts_as_empty_for_joinempty(tmp_path: Path) -> None:
    conf = conf_without(tmp_path, "res_pjsip_nat.so")
    queues = conf / "queues.conf"
    shipped = queues.read_text(encoding="utf-8")
    assert "joinempty = yes\n" in shipped
    queues.write_text(shipped.replace("joinempty = yes\n", "joinempty = strict\n"),
                      encoding="utf-8")
    async with sim_with(PLAN, *options(conf)) as (sim, _ami):
        await sim.request("register", endpoint="operator1", **BEHIND_NAT)
        await sim.request("operators", operators=[SEAT])
        refused = await sim.call({"number": "13800000013", "to": "normal",
                                  "context": "queue-entry"})
    assert refused["variables"]["QUEUESTATUS"] == "JOINEMPTY"
