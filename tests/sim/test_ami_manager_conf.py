"""The simulator's AMI user has the classes manager.conf gives it, and each action needs the
write classes Asterisk 22 registers it with: ListCommands, Permission denied, QueueStatus,
ShowDialPlan, and the queue events of a caller who times out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.sim.conftest import DIALPLANS
from tests.sim_ami.rawclient import Message, RawAmi
from tests.simharness import SimError, SimProcess, start_sim

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "asterisk_conf" / "extensions.conf"
SECRET = "t0p-s3cret"


@asynccontextmanager
async def sim_with(dialplan: Path, *extra: str) -> AsyncIterator[tuple[SimProcess, RawAmi]]:
    args = ["--ami-port", "0", "--ami-user", "hotline", "--ami-secret-env", "SIM_SECRET", *extra]
    async with start_sim([dialplan], extra_args=args, env={"SIM_SECRET": SECRET},
                         speed=20) as sim:
        assert sim.ami_port
        ami = await RawAmi.connect(sim.ami_port)
        await ami.login(secret=SECRET, events="off")
        try:
            yield sim, ami
        finally:
            ami.close()


def manager_conf(folder: Path, write: str) -> Path:
    path = folder / "manager.conf"
    path.write_text(f"[general]\nenabled = yes\n\n[hotline]\n#tryinclude \"absent.conf\"\n"
                    f"read = call,agent\nwrite = {write}\n", encoding="utf-8")
    return path


def commands(reply: Message) -> dict[str, str]:
    return {name: value for name, value in reply if name not in ("Response", "ActionID")}


async def test_shipped_user_runs_coreshowchannels_but_not_userevent() -> None:
    async with sim_with(SHIPPED) as (_sim, ami):
        listed = commands(await ami.request(("Action", "ListCommands"), ("ActionID", "l")))
        channels = await ami.request(("Action", "CoreShowChannels"))
        denied = await ami.request(("Action", "UserEvent"), ("UserEvent", "X"))
    assert listed["CoreShowChannels"] == "List currently active channels. " \
                                         "(Priv: system,reporting,all)"
    assert listed["Originate"] == "Originate a call. (Priv: originate,all)"
    assert listed["Redirect"] == "Redirect (transfer) a call. (Priv: call,all)"
    assert listed["QueueStatus"] == "Show queue status. (Priv: <none>)"
    assert listed["ShowDialPlan"] == "Show dialplan contexts and extensions " \
                                     "(Priv: config,reporting,all)"
    assert "UserEvent" not in listed  # write=user is not granted
    assert list(listed) == sorted(listed, key=str.lower)
    assert channels.get("Response") == "Success"
    assert denied == [("Response", "Error"), ("Message", "Permission denied")]


async def test_user_without_reporting_is_refused_coreshowchannels(tmp_path: Path) -> None:
    conf = manager_conf(tmp_path, "call,originate")
    async with sim_with(SHIPPED, "--manager-conf", str(conf)) as (_sim, ami):
        refused = await ami.request(("Action", "CoreShowChannels"), ("ActionID", "c1"))
        getvar = await ami.request(("Action", "Getvar"), ("Variable", "HOTLINE_QUEUE"))
        listed = commands(await ami.request(("Action", "ListCommands")))
    assert refused == [("Response", "Error"), ("ActionID", "c1"),
                       ("Message", "Permission denied")]
    assert getvar.get("Value") == "operators"  # Getvar: call OR reporting
    assert "CoreShowChannels" not in listed and "ShowDialPlan" not in listed
    assert "Originate" in listed and "Ping" in listed


async def test_unknown_user_section_stops_the_simulator(tmp_path: Path) -> None:
    conf = tmp_path / "manager.conf"
    conf.write_text("[general]\nenabled = yes\n[someone]\nwrite = all\n", encoding="utf-8")
    with pytest.raises(SimError, match=r"no \[hotline\] user section"):
        async with sim_with(SHIPPED, "--manager-conf", str(conf)):
            pass


async def test_queuestatus_lists_the_configured_queues() -> None:
    async with sim_with(SHIPPED) as (_sim, ami):
        await ami.send(("Action", "QueueStatus"), ("Queue", "operators-overflow"),
                       ("ActionID", "q"))
        first = await ami.read()
        params = await ami.read()
        complete = await ami.read_until(lambda m: m.get("Event") == "QueueStatusComplete")
        await ami.send(("Action", "QueueStatus"), ("Queue", "nosuchqueue"))
        none = [await ami.read(), await ami.read()]
    assert first == [("Response", "Success"), ("ActionID", "q"), ("EventList", "start"),
                     ("Message", "Queue status will follow")]
    assert params.names[:4] == ["Event", "Queue", "Max", "Strategy"]
    assert params.get("Queue") == "operators-overflow" and params.get("Strategy") == "ringall"
    assert params.names[-1] == "ActionID"
    assert complete.get("EventList") == "Complete"
    assert none[1] == [("Event", "QueueStatusComplete"), ("EventList", "Complete"),
                       ("ListItems", "0")]


async def test_showdialplan_finds_a_context_or_says_it_is_missing() -> None:
    async with sim_with(SHIPPED) as (_sim, ami):
        await ami.send(("Action", "ShowDialPlan"), ("Context", "hotline-emergency-callback"))
        start = await ami.read()
        items = []
        while (item := await ami.read()).get("Event") == "ListDialplan":
            items.append(item)
        missing = await ami.request(("Action", "ShowDialPlan"), ("Context", "no-such-context"))
    assert start == [("Response", "Success"), ("EventList", "start"),
                     ("Message", "DialPlan list will follow")]
    assert items[0] == [("Event", "ListDialplan"), ("Context", "hotline-emergency-callback"),
                        ("Extension", "s"), ("Priority", "1"), ("Application", "NoOp"),
                        ("AppData", "emergency callback for order ${HOTLINE_ORDER_ID}"),
                        ("Registrar", "pbx_config")]
    assert item.get("Event") == "ShowDialPlanComplete"
    assert item.get("ListItems") == str(len(items)) == item.get("ListPriorities")
    assert item.get("ListContexts") == "1"
    assert missing == [("Response", "Error"), ("Message", "Did not find context no-such-context")]


async def test_queue_timeout_is_reported_as_abandon_then_leave(tmp_path: Path) -> None:
    """app_queue: record_abandoned() (QueueCallerAbandon) then leave_queue() on a timeout."""
    async with sim_with(DIALPLANS / "queue.conf", "--global", "QTIMEOUT=2") as (sim, ami):
        await ami.send(("Action", "Events"), ("EventMask", "agent"))
        await ami.read()
        await sim.request("operators", operators=[{"name": "op1", "available": False}])
        call = asyncio.create_task(sim.call({"number": "13800000004", "to": "normal",
                                             "context": "queue-entry"}))
        seen = []
        while not any(m.get("Event") == "QueueCallerLeave" for m in seen):
            seen.append(await ami.read(timeout=10))
        result = await call
    names = [m.get("Event") for m in seen]
    # the operator added before the call is announced too, as app_queue does (agent class)
    assert names == ["QueueMemberAdded", "QueueCallerJoin", "QueueCallerAbandon",
                     "QueueCallerLeave"]
    assert seen[0].get("Interface") is not None
    abandon = seen[2]
    assert abandon.get("Uniqueid") == result["uniqueid"]
    assert abandon.names[-4:] == ["Queue", "Position", "OriginalPosition", "HoldTime"]
    assert abandon.get("HoldTime") == "2" and abandon.get("OriginalPosition") == "1"
    assert result["variables"]["QUEUESTATUS"] == "TIMEOUT"
