"""``serve`` wires the AMI server to the PBX: events of a simulated call reach an AMI client."""

from __future__ import annotations

import asyncio

import pytest

from tests.sim.conftest import DIALPLANS
from tests.simharness import SimError, start_sim

AMI_ARGS = ["--ami-port", "0", "--ami-user", "hotline", "--ami-secret-env", "SIM_TEST_SECRET"]


async def read_message(reader: asyncio.StreamReader) -> dict[str, str]:
    message: dict[str, str] = {}
    while True:
        line = (await asyncio.wait_for(reader.readline(), 10)).decode("utf-8")
        if line in ("\r\n", ""):
            return message
        key, _, value = line.rstrip("\r\n").partition(": ")
        message.setdefault(key, value)


async def test_call_events_reach_an_ami_client(sounds) -> None:
    async with start_sim([DIALPLANS / "basic.conf"], sounds, speed=20, extra_args=AMI_ARGS,
                         env={"SIM_TEST_SECRET": "s3cret"}) as sim:
        assert sim.ami_port
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.ami_port)
        assert await reader.readline() == b"Asterisk Call Manager/11.0.0\r\n"
        writer.write(b"Action: Login\r\nUsername: hotline\r\nSecret: s3cret\r\n\r\n")
        await writer.drain()
        assert (await read_message(reader)).get("Response") == "Success"
        call = asyncio.create_task(sim.call({"number": "13800138000", "to": "s",
                                             "context": "menu",
                                             "script": [{"press": "1", "delay": 0.5}]}))
        seen: list[dict[str, str]] = []
        while not any(m.get("Event") == "Hangup" for m in seen):
            seen.append(await read_message(reader))
        result = await call
        writer.close()
    ours = [m for m in seen if m.get("Uniqueid") == result["uniqueid"]]
    names = [m["Event"] for m in ours]
    assert names[0] == "Newchannel" and names[-1] == "Hangup"
    assert {"Newexten", "Newstate", "DTMFBegin", "DTMFEnd", "VarSet"} <= set(names)
    assert ours[0]["CallerIDNum"] == "13800138000"


async def test_ami_without_a_secret_refuses_to_start(sounds) -> None:
    with pytest.raises(SimError, match="SIM_TEST_SECRET is empty or unset"):
        async with start_sim([DIALPLANS / "basic.conf"], sounds, extra_args=AMI_ARGS,
                             env={"SIM_TEST_SECRET": ""}):
            pass
