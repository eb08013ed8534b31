"""The control protocol never crashes on bad input, and time runs at the requested speed."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.sim.conftest import DIALPLANS
from tests.simharness import SimError, start_sim

PLAN = [DIALPLANS / "basic.conf"]


async def test_bad_requests_get_errors_and_the_connection_survives(sounds) -> None:
    async with start_sim(PLAN, sounds) as sim:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim.control_port)

        async def send(raw: bytes) -> dict:
            import json

            writer.write(raw + b"\n")
            await writer.drain()
            return json.loads(await asyncio.wait_for(reader.readline(), 10))

        assert (await send(b"{not json"))["error"].startswith("bad JSON")
        assert (await send(b"\xff\xfe"))["ok"] is False
        assert (await send(b"[1, 2]"))["error"] == "request must be a JSON object"
        assert (await send(b'{"id": 1}'))["error"] == "missing op"
        assert (await send(b'{"id": 2, "op": "dance"}')) == {
            "id": 2, "ok": False, "error": "unknown op 'dance'"}
        bad_step = await send(b'{"id": 3, "op": "call", "caller": {"script": [{"press": "x"}]}}')
        assert bad_step["id"] == 3 and "press" in bad_step["error"]
        assert "caller must be an object" in (await send(b'{"id": 4, "op": "call"}'))["error"]
        bad_ops = await send(b'{"id": 5, "op": "operators", "operators": [{"name": ""}]}')
        assert "operator.name" in bad_ops["error"]
        assert "phone answer" in (await send(
            b'{"id": 6, "op": "phones", "phones": {"1": {"answer": "maybe"}}}'))["error"]
        assert "delay" in (await send(b'{"id": 7, "op": "call", "delay": -1, "caller": {}}'
                                      ))["error"]
        stats = await send(b'{"id": 8, "op": "stats"}')
        assert stats["ok"] and stats["result"]["calls_started"] == 0
        writer.write(b"x" * (4 * 1024 * 1024 + 10) + b"\n")
        await writer.drain()
        too_long = await asyncio.wait_for(reader.readline(), 10)
        assert b"longer than" in too_long
        assert await asyncio.wait_for(reader.read(), 10) == b""    # closed after that
        writer.close()
        # the simulator is still serving on the harness's own connection
        assert (await sim.request("stats"))["calls_started"] == 0
        with pytest.raises(SimError, match="unknown op"):
            await sim.request("nope")


async def test_speed_scales_simulated_time(sounds) -> None:
    async with start_sim(PLAN, sounds, speed=2000) as sim:
        began = time.monotonic()
        result = await sim.call({"number": "1", "to": "s", "context": "speed"})
        real = time.monotonic() - began
    simulated = result["ended_at"] - result["started_at"]
    assert 600 <= simulated < 640
    assert real < 60            # ten minutes of simulated time, not ten real minutes


async def test_background_waitexten_gosub_and_unknown_application(sounds) -> None:
    async with start_sim(PLAN, sounds, speed=20) as sim:
        one, twelve, invalid, timeout, unknown = await asyncio.gather(
            sim.call({"to": "s", "context": "menu", "script": [{"press": "1", "delay": 1}]}),
            sim.call({"to": "s", "context": "menu", "script": [{"press": "12", "delay": 1}]}),
            sim.call({"to": "s", "context": "menu",
                      "script": [{"silent": True}, {"press": "7", "delay": 1}]}),
            sim.call({"to": "s", "context": "menu"}),
            sim.call({"to": "s", "context": "unknown-app"}),
        )
    assert one["variables"]["CHOICE"] == "one"
    assert one["heard"][0][1:] == ["welcome", "1"]
    assert twelve["variables"]["CHOICE"] == "twelve"
    assert invalid["variables"]["CHOICE"] == "invalid:7"
    assert timeout["variables"]["CHOICE"] == "timeout:2-x-2"
    assert [h[1] for h in timeout["heard"]] == ["welcome", "welcome"]
    assert unknown["apps"][-1][1] == "NoSuchApplication"
    assert "NEVER" not in unknown["variables"]
    assert unknown["hangup_by"] == "pbx"
