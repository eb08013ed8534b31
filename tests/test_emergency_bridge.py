"""Wire-level: an operator talking with an elder brings 120 and then a family member into the
call with ``hotline bridge`` (AMI Redirect into a ConfBridge room, then Originate), and every
attempt is on the order's timeline."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from dispatch.models import OrderEvent, QueueCall, WorkOrder
from dispatch.phones import national
from tests.callstack import CallStack, open_stack
from tests.test_family_escalation import handset_with_family

SPEED = 20.0
LONG = 5000.0  # nobody hangs up by themselves during the test


async def run_bridge(stack: CallStack, call: str, target: str) -> tuple[int, str, str]:
    """Run ``hotline bridge`` as an operator's console would, against the running PBX:
    exit code, stdout, stderr."""
    env = {**os.environ, "HOTLINE_DATABASE__URL": stack.db_url,
           "HOTLINE_AMI__PORT": str(stack.sim.ami_port),
           "HOTLINE_AMI__SECRET": stack.sim.ami_secret, "HOTLINE_CONFIG": ""}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.cli", "bridge", call, "--to", target, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return int(process.returncode or 0), out.decode(), err.decode(errors="replace")


async def hotline_bridge(stack: CallStack, call: str, target: str) -> tuple[int, dict[str, Any]]:
    code, out, err = await run_bridge(stack, call, target)
    assert out, err
    return code, json.loads(out)


async def conference_members(stack: CallStack, count: int) -> list[dict[str, Any]]:
    for _ in range(100):
        channels = (await stack.sim.request("channels"))["channels"]
        members = [c for c in channels if c["app"] == "ConfBridge"]
        if len(members) >= count:
            return members
        await asyncio.sleep(0.1)
    return members


async def test_operator_bridges_120_then_a_family_member(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=300, speed=SPEED, ami=True):
        line, family = handset_with_family(stack.db_url, 1)
        await stack.sim.request("operators", operators=[
            {"name": "op1", "answer_delay_s": 2.0, "talk_s": LONG}])
        await stack.sim.request("phones", phones={
            "120": {"answer": "answer", "ring_s": 2.0, "hangup_after": LONG},
            **{national(n): {"answer": "busy"} for n in family},  # family: always busy
        })
        call = asyncio.create_task(stack.call(national(line), hangup_after=LONG))
        [(uniqueid, _answered)] = await stack.poll(
            select(QueueCall.uniqueid, QueueCall.answered_at),
            lambda rows: bool(rows) and rows[0][1] is not None)
        [(order_id, order_no)] = await stack.poll(
            select(WorkOrder.id, WorkOrder.order_no).where(WorkOrder.call_uniqueid == uniqueid),
            bool)

        code, first = await hotline_bridge(stack, order_no, "120")
        assert code == 0 and first["outcome"] == "answered" and first["redirected"], first
        members = await conference_members(stack, 3)
        names = sorted(m["name"].split("-")[0] for m in members)
        assert names == ["PJSIP/op1", "PJSIP/pstn", "PJSIP/trunk"], members  # 120 via trunk
        assert {m["exten"] for m in members} == {first["room"]}

        code, second = await hotline_bridge(stack, uniqueid, "family:1")
        assert code == 1 and second["outcome"] == "busy" and not second["redirected"]
        assert second["room"] == first["room"]

        elder = next(m["name"] for m in members if m["uniqueid"] == uniqueid)
        assert stack.engine is not None
        await stack.engine.ami.action("Hangup", {"Channel": elder})
        result = await asyncio.wait_for(call, 60)
        timeline = await stack.poll(
            select(OrderEvent.kind, OrderEvent.detail)
            .where(OrderEvent.order_id == order_id, OrderEvent.kind == "bridged")
            .order_by(OrderEvent.id), lambda rows: len(rows) >= 2)
    assert result["queue"]["operator"] == "op1" and result["queue"]["ended_by"] == "redirect"
    assert ("ConfBridge", f"hotline-{first['room']}") in [(a, d) for _t, a, d in result["apps"]]
    assert [(d["target"], d["outcome"], d["redirected"]) for _k, d in timeline] == [
        ("120", "answered", True), ("family:1", "busy", False)]
    assert timeline[1][1]["contact_id"]
    assert str(national(family[0])) not in json.dumps([d for _k, d in timeline])


async def elder_with_operator(stack: CallStack, calls: set[asyncio.Task[Any]]
                              ) -> tuple[str, int, str]:
    """A handset emergency answered by op1: (uniqueid, order id, order number); the call's
    task goes into ``calls``."""
    line, _family = handset_with_family(stack.db_url, 1)
    await stack.sim.request("operators", operators=[
        {"name": "op1", "answer_delay_s": 2.0, "talk_s": LONG}])
    calls.add(asyncio.create_task(stack.call(national(line), hangup_after=LONG)))
    [(uniqueid, _answered)] = await stack.poll(
        select(QueueCall.uniqueid, QueueCall.answered_at),
        lambda rows: bool(rows) and rows[0][1] is not None)
    [(order_id, order_no)] = await stack.poll(
        select(WorkOrder.id, WorkOrder.order_no).where(WorkOrder.call_uniqueid == uniqueid),
        bool)
    return uniqueid, order_id, order_no


async def test_a_refused_coreshowchannels_is_named_and_recorded(tmp_path: Path) -> None:
    """A PBX whose AMI user lacks write=reporting refuses CoreShowChannels: the operator is
    told so (not that the call ended) and the failed attempt is on the timeline."""
    conf = tmp_path / "manager.conf"
    conf.write_text("[hotline]\nread = system,call,agent,user\nwrite = call,originate\n",
                    encoding="utf-8")
    async for stack in open_stack("embedded", tmp_path, elders=300, speed=SPEED, ami=True,
                                  sim_args=("--manager-conf", str(conf))):
        _uniqueid, order_id, order_no = await elder_with_operator(stack, calls := set())
        code, out, err = await run_bridge(stack, order_no, "120")
        timeline = await stack.poll(
            select(OrderEvent.detail)
            .where(OrderEvent.order_id == order_id, OrderEvent.kind == "bridged"), bool)
        await stack.engine.ami.action("Hangup", {"Channel": "/PJSIP/"}) if stack.engine else None
        await asyncio.wait_for(asyncio.gather(*calls), 60)
    assert code == 1 and not out
    assert "permission denied for CoreShowChannels (needs write=reporting)" in err, err
    assert "the call has ended" not in err
    [(detail,)] = timeline
    assert detail["target"] == "120" and detail["outcome"] == "failed"
    assert detail["error"] == "permission denied for CoreShowChannels (needs write=reporting)"


async def test_a_bridge_to_a_call_that_ended_is_recorded(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=300, speed=SPEED, ami=True):
        uniqueid, order_id, order_no = await elder_with_operator(stack, calls := set())
        channels = (await stack.sim.request("channels"))["channels"]
        elder = next(c["name"] for c in channels if c["uniqueid"] == uniqueid)
        assert stack.engine is not None
        await stack.engine.ami.action("Hangup", {"Channel": elder})
        while any(c["uniqueid"] == uniqueid
                  for c in (await stack.sim.request("channels"))["channels"]):
            await asyncio.sleep(0.05)  # polls the PBX until the channel is gone
        code, _out, err = await run_bridge(stack, order_no, "family:1")
        timeline = await stack.poll(
            select(OrderEvent.detail)
            .where(OrderEvent.order_id == order_id, OrderEvent.kind == "bridged"), bool)
        await asyncio.wait_for(asyncio.gather(*calls), 60)
    assert code == 1 and "the call has ended" in err
    [(detail,)] = timeline
    assert (detail["target"], detail["outcome"], detail["error"]) == (
        "family:1", "failed", "the call has ended")
