"""End to end: the engine's AMI client against the simulator (``python -m sim serve``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr.ami import AmiAuthError, AmiMessage, AmiResponse
from tests.simharness import start_sim

from .scripted import SECRET

DIALPLAN = """
[vendor-offer]
exten => s,1,NoOp(offer)
 same => n,Wait(600)
 same => n,Hangup()
"""
PHONES = {
    "s@callee-answers": {"answer": "answer", "ring_s": 0.5, "hangup_after": None},
    "s@callee-busy": {"answer": "busy", "ring_s": 0.2},
    "s@callee-congestion": {"answer": "congestion", "ring_s": 0.2},
    "s@callee-noanswer": {"answer": "noanswer"},
}


@pytest.fixture
async def sim_port(tmp_path: Path) -> AsyncIterator[int]:
    dialplan = tmp_path / "test.conf"
    dialplan.write_text(DIALPLAN, encoding="utf-8")
    async with start_sim(
        [dialplan], speed=20, globals_={"GREETING": "你好"},
        extra_args=["--ami-port", "0", "--ami-secret-env", "TEST_AMI_SECRET"],
        env={"TEST_AMI_SECRET": SECRET},
    ) as sim:
        await sim.request("phones", phones=PHONES)
        assert sim.ami_port is not None
        yield sim.ami_port
        assert "Traceback" not in sim.stderr_text()


@pytest.mark.parametrize("auth", ["md5", "plain"])
async def test_login_and_basic_actions(client_factory, sim_port: int, auth: str) -> None:
    client = client_factory(sim_port, auth=auth)
    await client.start()
    assert client.connected
    reply = await client.action("Getvar", {"Variable": "GREETING"})
    assert isinstance(reply, AmiResponse) and reply["Value"] == "你好"
    reply = await client.action("Setvar", {"Variable": f"LAST_{auth}", "Value": "张三丰"})
    assert reply.message == "Variable Set"
    reply = await client.action("Getvar", {"Variable": f"LAST_{auth}"})
    assert reply["Value"] == "张三丰"
    reply = await client.action("Getvar", {"Variable": "NEVER_SET"})
    assert reply["Value"] == ""
    reply = await client.action("NoSuchAction")
    assert not reply.success and reply.message.startswith("Invalid/unknown command")


async def test_event_list_comes_back_as_one_list(client_factory, sim_port: int) -> None:
    client = client_factory(sim_port)
    await client.start()
    await client.originate(channel="Local/s@callee-answers/n", context="vendor-offer",
                           exten="s", caller_id="12349", variables={}, timeout_ms=5000)
    messages = await client.action("CoreShowChannels")
    assert isinstance(messages, list)
    assert messages[0].get("EventList") == "start"
    assert messages[-1].event == "CoreShowChannelsComplete"
    assert int(messages[-1]["ListItems"]) == len(messages) - 2 >= 1


@pytest.mark.parametrize(("callee", "reason", "name"), [
    ("callee-answers", 4, "answered"), ("callee-busy", 5, "busy"),
    ("callee-congestion", 8, "congestion"), ("callee-noanswer", 3, "no_answer"),
])
async def test_originate_outcomes(client_factory, sim_port: int, callee: str, reason: int,
                                  name: str) -> None:
    client = client_factory(sim_port)
    await client.start()
    outcome = await client.originate(
        channel=f"Local/s@{callee}/n", context="vendor-offer", exten="s",
        caller_id='"12349热线" <12349>', variables={"ORDER_ID": "78", "NOTE": "a,b"},
        timeout_ms=30000,
    )
    assert (outcome.reason, outcome.reason_name) == (reason, name)
    assert outcome.answered == (reason == 4)
    if reason == 4:
        assert outcome.uniqueid is not None
        reply = await client.action("Getvar", {"Channel": outcome.channel, "Variable": "NOTE"})
        assert reply["Value"] == "a,b"  # the comma survived Asterisk's argument splitting
    else:
        assert outcome.uniqueid is None and outcome.channel == f"Local/s@{callee}/n"


async def test_user_event_with_chinese_text_reaches_handlers(client_factory,
                                                             sim_port: int) -> None:
    got: asyncio.Queue[AmiMessage] = asyncio.Queue()
    client = client_factory(sim_port)
    client.on_event("UserEvent", got.put_nowait)
    await client.start()
    await client.action("UserEvent", {"UserEvent": "OrderCreated", "Elder": "张三丰" * 50})
    event = await asyncio.wait_for(got.get(), 5)
    assert event["UserEvent"] == "OrderCreated" and event["Elder"] == "张三丰" * 50


async def test_wrong_secret_is_refused(client_factory, sim_port: int) -> None:
    client = client_factory(sim_port, secret="not-it")
    with pytest.raises(AmiAuthError, match="Authentication failed"):
        await client.start()


@pytest.mark.parametrize(("events", "dialplan_events"), [("call,agent,user", False),
                                                         ("on", True)])
async def test_login_asks_only_for_the_event_classes_the_engine_uses(
        client_factory, sim_port: int, events: str, dialplan_events: bool) -> None:
    """Dialplan events (Newexten, VarSet: several per call) are never read by the engine, so
    its login leaves them off; Originate replies (call class) still arrive."""
    seen: list[str] = []
    client = client_factory(sim_port, events=events)
    client.on_event("*", lambda message: seen.append(message.event))
    await client.start()
    outcome = await client.originate(channel="Local/s@callee-answers/n", context="vendor-offer",
                                     exten="s", caller_id="12349", variables={"A": "1"},
                                     timeout_ms=5000)
    assert outcome.answered
    await client.action("UserEvent", {"UserEvent": "Marker"})
    for _ in range(50):
        if "UserEvent" in seen:
            break
        await asyncio.sleep(0.05)
    assert "UserEvent" in seen and "Newchannel" in seen
    assert ("Newexten" in seen or "VarSet" in seen) == dialplan_events
