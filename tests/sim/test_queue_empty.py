"""joinempty and leavewhenempty (queues.conf) as app_queue applies them, seen over the
simulator's AMI: a caller refused by an empty queue gets QUEUESTATUS=JOINEMPTY and no
QueueCallerJoin; a waiting caller sent away by a queue that became empty gets
QueueCallerAbandon then QueueCallerLeave and QUEUESTATUS=LEAVEEMPTY."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sim.queue_empty import EMPTY_WHEN_PAUSED, LOOSE, STRICT, is_empty, parse_empty_options
from tests.sim.conftest import DIALPLANS
from tests.sim.test_ami_manager_conf import sim_with
from tests.sim_ami.rawclient import Message, RawAmi

PLAN = DIALPLANS / "queue.conf"
EVENT_WAIT_S = 30.0


def queues_conf(folder: Path, **options: str) -> str:
    """A queues.conf with one queue, ``operators``, and ``options``; its path."""
    path = folder / "queues.conf"
    lines = "".join(f"{key} = {value}\n" for key, value in options.items())
    path.write_text(f"[general]\n\n[operators]\nstrategy = rrmemory\n{lines}",
                    encoding="utf-8")
    return str(path)


def caller(number: str, **extra: object) -> dict:
    return {"number": number, "to": "normal", "context": "queue-entry", **extra}


async def events_of(ami: RawAmi, number: str, last: str) -> list[Message]:
    """Events for the caller ``number`` until (and with) the first ``last`` one."""
    seen: list[Message] = []
    while not seen or seen[-1].get("Event") != last:
        message = await ami.read(timeout=EVENT_WAIT_S)
        if message.get("CallerIDNum") == number:
            seen.append(message)
    return seen


async def listen(ami: RawAmi, mask: str) -> None:
    await ami.send(("Action", "Events"), ("EventMask", mask))
    await ami.read()


async def test_a_caller_waiting_when_the_last_member_pauses_leaves_the_queue(
        tmp_path: Path) -> None:
    conf = queues_conf(tmp_path, joinempty="yes", leavewhenempty="strict")
    async with sim_with(PLAN, "--queues-conf", conf, "--global", "QTIMEOUT=600") as (sim, ami):
        await listen(ami, "agent")
        await sim.request("operators", operators=[
            {"name": "op1", "answer_delay_s": 1, "talk_s": 100_000}])
        talking = asyncio.create_task(sim.call(caller("13800000001")))
        try:
            await events_of(ami, "13800000001", "AgentConnect")  # op1 is on a call
            waiting = asyncio.create_task(sim.call(caller("13800000002")))
            joined = await events_of(ami, "13800000002", "QueueCallerJoin")
            # in use is not empty under 'strict'; a paused last member is
            await sim.request("operators", operators=[
                {"name": "op1", "available": False, "talk_s": 100_000}])
            left = await events_of(ami, "13800000002", "QueueCallerLeave")
            result = await waiting
        finally:
            talking.cancel()
    assert [m.get("Event") for m in joined + left] == [
        "QueueCallerJoin", "QueueCallerAbandon", "QueueCallerLeave"]
    abandon = left[0]
    assert abandon.names[-4:] == ["Queue", "Position", "OriginalPosition", "HoldTime"]
    assert (abandon.get("Queue"), abandon.get("Position"), abandon.get("OriginalPosition")) \
        == ("operators", "1", "1")
    assert abandon.get("Uniqueid") == result["uniqueid"]
    assert result["variables"]["QUEUESTATUS"] == "LEAVEEMPTY"
    assert result["variables"]["AFTER"] == "LEAVEEMPTY"  # back in the dialplan
    assert result["variables"]["ABANDONED"] == "TRUE"
    assert result["queue"]["left_reason"] == "leaveempty"
    assert result["queue"]["ended_at"] - result["queue"]["joined_at"] < 600


async def test_an_empty_queue_refuses_a_caller_with_joinempty(tmp_path: Path) -> None:
    conf = queues_conf(tmp_path, joinempty="paused,invalid")
    async with sim_with(PLAN, "--queues-conf", conf) as (sim, ami):
        await listen(ami, "agent,call")
        await sim.request("operators", operators=[{"name": "op1", "available": False}])
        result = await sim.call(caller("13800000003"))
        seen = await events_of(ami, "13800000003", "Hangup")
    assert not [m for m in seen if m.get("Event").startswith("QueueCaller")]
    assert result["variables"]["QUEUESTATUS"] == "JOINEMPTY"
    assert result["variables"]["AFTER"] == "JOINEMPTY"
    assert result["queue"] is None


async def test_joinempty_loose_lets_a_caller_wait_for_a_paused_member(tmp_path: Path) -> None:
    conf = queues_conf(tmp_path, joinempty="loose")
    async with sim_with(PLAN, "--queues-conf", conf, "--global", "QTIMEOUT=2") as (sim, ami):
        await listen(ami, "agent")
        await sim.request("operators", operators=[{"name": "op1", "available": False}])
        result = await sim.call(caller("13800000004"))
        seen = await events_of(ami, "13800000004", "QueueCallerLeave")
    assert seen[0].get("Event") == "QueueCallerJoin"
    assert result["variables"]["QUEUESTATUS"] == "TIMEOUT"


def test_empty_options_are_parsed_as_app_queue_does() -> None:
    assert parse_empty_options("yes", joinempty=True) == frozenset()
    assert parse_empty_options("no", joinempty=True) == EMPTY_WHEN_PAUSED
    assert parse_empty_options("yes", joinempty=False) == EMPTY_WHEN_PAUSED
    assert parse_empty_options("no", joinempty=False) == frozenset()
    assert parse_empty_options("strict", joinempty=True) == STRICT
    assert parse_empty_options("inuse,loose", joinempty=False) == LOOSE  # a shorthand resets
    assert parse_empty_options("loose,inuse", joinempty=False) == LOOSE | {"inuse"}
    assert parse_empty_options("unavailable", True, LOOSE) == LOOSE | {"unavailable"}
    assert parse_empty_options("paused, ringing", joinempty=True) == {"paused"}  # ' ringing'


def test_a_queue_is_empty_when_no_member_escapes_the_conditions() -> None:
    assert not is_empty([], frozenset())  # no conditions: never empty
    assert is_empty([], STRICT)  # no members at all
    assert is_empty([("UNAVAILABLE", False), ("NOT_INUSE", True)], STRICT)
    assert not is_empty([("UNAVAILABLE", False), ("INUSE", False)], STRICT)
    assert is_empty([("INUSE", False)], frozenset({"inuse"}))
    assert not is_empty([("UNAVAILABLE", False)], LOOSE)
