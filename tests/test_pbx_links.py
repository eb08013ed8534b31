"""Several Asterisk boxes: the engine keeps an AMI link to each, and each call goes out on the
box that owns its trunk.

Wire-level: two simulator processes stand for two PBXs, each with its own AMI server and its
own ``systemname`` (so their uniqueids cannot collide). Box A takes the 12349 calls and owns
the trunk ``trunk``; box B owns ``trunk-b``, the family contacts' trunk. A call for a trunk a
box does not have fails there, as chan_pjsip's does, so a family call sent to the wrong box
could not ring. A handset emergency on box A has its family escalation dialled on box B, and
the family member's key press (a FastAGI session from box B) ends it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatch.models import OrderEvent
from dispatch.phones import national
from ivr.ami.pbx_links import Pbx, PbxLinks, endpoint_of
from ivr.cli import _check_pbx
from ivr.config import AmiSettings
from ivr.demo.simproc import SimulatorProcess
from ivr.escalation import FAMILY_CONTEXT
from tests.callstack import CallStack, open_stack, until
from tests.sim_phones import answers_and_presses
from tests.tcp_proxy import CuttableProxy
from tests.test_family_escalation import escalation_events, handset_with_family


@pytest.mark.parametrize(("channel", "endpoint"), [
    ("PJSIP/13800138000@trunk-b", "trunk-b"),
    ("PJSIP/operator1", "operator1"),
    ("PJSIP/trunk-b-0000001a", "trunk-b"),  # a channel name: the endpoint and a sequence
    ("PJSIP/trunk-0000001a", "trunk"),
    ("pjsip/120@trunk", "trunk"),
    ("Local/1@default", None),
    ("PJSIP/", None),
    ("", None),
])
def test_the_endpoint_of_a_dial_string_or_channel(channel: str, endpoint: str | None) -> None:
    assert endpoint_of(channel) == endpoint


class Recorder:
    """A link that records what it was asked (pure routing logic, no AMI)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked: list[tuple[str, str | None]] = []
        self.connected = False

    async def action(self, name: str, headers: Mapping[str, Any] | None = None, *,
                     timeout: float = 10.0) -> Any:
        self.asked.append((name, (headers or {}).get("Channel")))
        return {"Response": "Success"}

    async def originate(self, *, channel: str, **_: Any) -> Any:
        self.asked.append(("Originate", channel))
        return self.name

    async def late_outcome(self, action_id: str, timeout: float) -> Any:
        return self.name if action_id.startswith(self.name) else None


async def test_calls_and_channel_actions_go_to_the_box_that_owns_the_endpoint() -> None:
    a, b = Recorder("a"), Recorder("b")
    links = PbxLinks([Pbx("a", frozenset({"trunk", "operator1"}), a),  # type: ignore[arg-type]
                      Pbx("b", frozenset({"trunk-b"}), b)])  # type: ignore[arg-type]
    common = {"context": "c", "exten": "s", "caller_id": "12349", "variables": {},
              "timeout_ms": 1000}
    assert await links.originate(channel="PJSIP/138@trunk-b", **common) == "b"
    assert await links.originate(channel="PJSIP/138@trunk", **common) == "a"
    assert await links.originate(channel="PJSIP/138@elsewhere", **common) == "a"  # the first
    await links.action("Redirect", {"Channel": "PJSIP/trunk-b-00000001"})
    await links.action("Hangup", {"Channel": "PJSIP/operator1-00000002"})
    await links.action("QueueStatus")
    assert b.asked == [("Originate", "PJSIP/138@trunk-b"), ("Redirect", "PJSIP/trunk-b-00000001")]
    assert [name for name, _ in a.asked] == ["Originate", "Originate", "Hangup", "QueueStatus"]
    assert await links.late_outcome("b-orig-1", 1.0) == "b"
    assert not links.connected
    b.connected = True
    assert links.connected


@contextlib.asynccontextmanager
async def two_boxes(tmp_path: Path, cut_b: bool = False) -> AsyncIterator[TwoBoxes]:
    """Box A (the stack's simulator, 12349 and ``trunk``) and box B (``trunk-b``, the family
    trunk), an AMI link to each; with ``cut_b`` box B's link runs through a CuttableProxy."""
    async for stack in open_stack("embedded", tmp_path, elders=300,
                                  sim_args=("--system-name", "pbx-a")):
        assert stack.engine is not None
        other = await SimulatorProcess.start(
            agi_url=f"agi://127.0.0.1:{stack.engine.agi_port}", speed=60.0,
            log_path=tmp_path / "sim-b.log",
            extra_args=["--system-name", "pbx-b", "--pjsip-trunks", "trunk-b"],
            globals_={"HOTLINE_SPOOL_DIR": str(tmp_path / "spool")})
        proxy = CuttableProxy(int(other.ami_port or 0)) if cut_b else None
        try:
            port_b = await proxy.start() if proxy else int(other.ami_port or 0)
            settings = stack.settings
            settings.ami = AmiSettings(name="pbx-a", port=int(stack.sim.ami_port or 0),
                                       secret=stack.sim.ami_secret, endpoints=["trunk"])
            settings.pbxs = [AmiSettings(name="pbx-b", port=port_b, secret=other.ami_secret,
                                         endpoints=["trunk-b"], reconnect_delay_s=0.2)]
            settings.dial.family = "PJSIP/{number}@trunk-b"
            await stack.engine.start_ami()
            yield TwoBoxes(stack, other, proxy)
        finally:
            if proxy is not None:
                await proxy.close()
            await other.stop()


@dataclass
class TwoBoxes:
    stack: CallStack
    other: SimulatorProcess
    proxy: CuttableProxy | None

    async def family_calls(self) -> tuple[list[str], list[str]]:
        """The family calls placed on box A and on box B (their dial strings)."""
        placed = []
        for sim in (self.stack.sim, self.other):
            log = (await sim.request("originated"))["originated"]
            placed.append([call["channel"] for call in log if call["context"] == FAMILY_CONTEXT])
        return placed[0], placed[1]


async def test_family_calls_go_out_on_the_box_that_owns_their_trunk(tmp_path: Path) -> None:
    async with two_boxes(tmp_path) as boxes:
        stack, engine = boxes.stack, boxes.stack.engine
        assert engine is not None
        line, family = handset_with_family(stack.db_url, 1)
        await boxes.other.request("phones", phones={
            national(family[0]): answers_and_presses(("1", 2.0), ring_s=1.0)})
        result = await stack.call(national(line))
        _, order = stack.record(result["uniqueid"])
        events = await escalation_events(stack, order.order_no)
        on_a, on_b = await boxes.family_calls()
        checked, every_box_ok = await _check_pbx(stack.settings)  # hotline check-pbx
    assert result["uniqueid"].startswith("pbx-a-")
    assert on_b == [f"PJSIP/{national(family[0])}@trunk-b"] and on_a == []
    called = [detail["outcome"] for kind, detail in events if kind == "family_called"]
    assert called == ["answered"], events
    assert [kind for kind, _ in events].count("family_acknowledged") == 1
    assert engine.pbx_ok, engine.pbx_reports
    assert every_box_ok and [line.split(" 127.")[0] for line in checked
                             if line.startswith("ok    AMI pbx")] == [
        "ok    AMI pbx-a", "ok    AMI pbx-b"]


async def test_one_box_cut_off_delays_only_its_own_calls(tmp_path: Path) -> None:
    """Box B's AMI link is cut: a handset emergency on box A still reaches the operators with
    its order, and its family call, which needs box B, is placed once the link is back."""
    async with two_boxes(tmp_path, cut_b=True) as boxes:
        stack, engine = boxes.stack, boxes.stack.engine
        assert engine is not None and boxes.proxy is not None
        line, family = handset_with_family(stack.db_url, 1)
        await boxes.other.request("phones", phones={
            national(family[0]): answers_and_presses(("1", 2.0), ring_s=1.0)})
        await boxes.proxy.cut()
        await until(lambda: not engine.ami_clients[1].connected, "box B's link down")
        result = await stack.call(national(line))
        _, order = stack.record(result["uniqueid"])
        timeline = await stack.poll(
            select(OrderEvent.kind).where(OrderEvent.order_id == order.id), bool)
        on_a, on_b = await boxes.family_calls()
        not_called = await stack.poll(
            select(OrderEvent.kind).where(OrderEvent.order_id == order.id,
                                          OrderEvent.kind == "family_not_called"), bool)
        on_a, on_b = await boxes.family_calls()
        assert on_a == [] and on_b == []  # nothing dialled while box B is away
        boxes.proxy.restore()
        events = await escalation_events(stack, order.order_no)
        on_a, on_b = await boxes.family_calls()
    assert result["queue"] is not None and result["queue"]["operator"] in ("op1", "op2")
    assert order.service == "emergency" and timeline
    assert on_b == [f"PJSIP/{national(family[0])}@trunk-b"] and on_a == []
    assert [kind for kind, _ in events].count("family_acknowledged") == 1
    # the escalation waited for box B; it did not try again and again while it was away
    assert 1 <= len(not_called) <= 2 and len(not_called) == [
        kind for kind, _ in events].count("family_not_called"), events
