"""The project's own dialplan under the simulator: with the engine unreachable the 12349 call
still reaches the operator queue with its spoken reassurance, and with nobody free it ends with
the callback prompt."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.simharness import start_sim

ROOT = Path(__file__).resolve().parents[2]
PLANS = [ROOT / "asterisk_conf" / "extensions.conf", ROOT / "dialplans"]
PROMPTS = ROOT / "recordings" / "prompts"


async def test_engine_down_routes_to_a_human(tmp_path: Path) -> None:
    operators = tmp_path / "operators.json"
    operators.write_text(json.dumps([{"name": "op1", "answer_delay_s": 2, "talk_s": 5}]))
    globals_ = {"HOTLINE_AGI": "agi://127.0.0.1:1", "HOTLINE_QUEUE_TIMEOUT": "3",
                "HOTLINE_OVERFLOW_S": "3",
                "HOTLINE_AGI_BIN": str(ROOT / "agi_scripts"),
                "HOTLINE_SPOOL_DIR": str(tmp_path / "spool")}
    async with start_sim(PLANS, PROMPTS, globals_, speed=20,
                         extra_args=["--operators", str(operators)]) as sim:
        served, nobody = await asyncio.gather(
            sim.call({"number": "13800138000", "to": "12349"}),
            sim.call({"number": "13800138001", "to": "12349"}, timeout=60),
        )
    calls = sorted([served, nobody], key=lambda c: c["queue"]["answered_at"] is None)
    served, nobody = calls
    for call in calls:
        assert call["variables"]["HOTLINE_REASON"] == "engine_FAILURE"
        assert call["queue"]["name"] == ("operators" if call is served else "operators-overflow")
        assert any(app == "UserEvent" and data.startswith("HotlineQueued")
                   for _t, app, data in call["apps"])
    assert served["queue"]["operator"] == "op1"
    assert nobody["queue"]["left_reason"] == "timeout"
    assert nobody["variables"]["QUEUESTATUS"] == "TIMEOUT"
    assert nobody["variables"]["HOTLINE_SPOOLED"] == "1"  # nobody answered: spooled, not lost
    assert served["variables"]["HOTLINE_SPOOLED"] == "1"  # ended with no engine aware of it
    members = {record["uniqueid"]: record["member"] for record in (
        json.loads(path.read_text(encoding="utf-8"))
        for path in (tmp_path / "spool").glob("*.json"))}
    assert members == {served["uniqueid"]: "PJSIP/op1", nobody["uniqueid"]: ""}
    # the engine is down, yet each queue's hold class (musiconhold.conf) reassures the caller
    assert served["queue"]["musicclass"] == nobody["queue"]["musicclass"] == "hotline-operator-zh"
    assert [h[1] for h in served["heard"]] == ["hotline/zh/to_operator"]
    assert [h[1] for h in nobody["heard"]] == [
        "hotline/zh/to_operator", "hotline/zh/to_operator", "hotline/zh/operator_unavailable"]
