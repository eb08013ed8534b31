"""Wire-level, shipped dialplan under the simulator with the engine down: the supervisor's
phone rings too once no operator answered within HOTLINE_OVERFLOW_S, and every call the
engine did not take is spooled by the classic script from the ``h`` extension when it ends:
a caller who hung up while waiting, and a caller an operator talked to (the replay opens an
order for a handset call only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dispatch.db import upgrade
from dispatch.spool_replay import replay_spool
from ivr.demo.simproc import SimulatorProcess
from tests.ports import closed_port
from tests.test_emergency_spool import AREA, NOW, city, emergency_orders, open_sessions, spool_files

SPEED = 30.0
SUPERVISOR = {"name": "supervisor", "answer_delay_s": 2.0, "talk_s": 5.0,
              "queues": ["operators-overflow"]}


async def engine_down_call(tmp_path: Path, operators: list[dict[str, Any]], number: str,
                           hangup_after: float | None = None, **globals_: str
                           ) -> dict[str, Any]:
    sim = await SimulatorProcess.start(
        agi_url=f"agi://127.0.0.1:{closed_port()}", speed=SPEED, log_path=tmp_path / "sim.log",
        globals_={"HOTLINE_SPOOL_DIR": str(tmp_path / "spool"), **globals_},
    )
    try:
        await sim.request("operators", operators=operators)
        return await sim.call({"number": number, "name": "", "to": "12349",
                               "context": "from-pstn", "script": [],
                               "hangup_after": hangup_after})
    finally:
        await sim.stop()


def app_times(result: dict[str, Any], app: str) -> list[float]:
    return [at for at, name, _data in result["apps"] if name == app]


async def test_no_operator_within_the_overflow_time_rings_the_supervisor(tmp_path: Path
                                                                         ) -> None:
    sleepy = {"name": "op1", "answer_delay_s": 300.0, "talk_s": 5.0}  # rings, never answers
    result = await engine_down_call(tmp_path, [sleepy, SUPERVISOR], "13800138000")
    queue = result["queue"]
    assert (queue["name"], queue["operator"]) == ("operators-overflow", "supervisor")
    first_join = app_times(result, "Queue")[0]
    assert queue["answered_at"] - first_join >= 30.0  # the default HOTLINE_OVERFLOW_S
    assert any(name == "UserEvent" and data.startswith("HotlineOverflow")
               for _t, name, data in result["apps"])
    assert result["variables"]["MEMBERINTERFACE"] == "PJSIP/supervisor"  # setinterfacevar
    [path] = spool_files(tmp_path / "spool")
    assert json.loads(path.read_text(encoding="utf-8"))["member"] == "PJSIP/supervisor"


async def test_an_operator_within_the_overflow_time_keeps_the_supervisor_free(
        tmp_path: Path) -> None:
    quick = {"name": "op1", "answer_delay_s": 3.0, "talk_s": 5.0}
    result = await engine_down_call(tmp_path, [quick, SUPERVISOR], "13800138000",
                                    HOTLINE_OVERFLOW_S="10")
    assert (result["queue"]["name"], result["queue"]["operator"]) == ("operators", "op1")
    assert len(app_times(result, "Queue")) == 1


async def test_a_caller_who_hangs_up_in_the_queue_is_spooled_and_replayed(tmp_path: Path
                                                                          ) -> None:
    db_url = f"sqlite:///{tmp_path / 'hotline.sqlite3'}"
    upgrade(db_url)
    number = city(db_url)["elders"][0].removeprefix("+86")
    result = await engine_down_call(tmp_path, [], number, hangup_after=20.0)
    variables = result["variables"]
    assert result["hangup_by"] == "caller" and result["queue"]["left_reason"] == "abandon"
    assert variables["ABANDONED"] == "TRUE" and variables["HOTLINE_SPOOLED"] == "1"
    [path] = spool_files(tmp_path / "spool")
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["uniqueid"] == result["uniqueid"]
    assert record["reason"] == "engine_FAILURE" and record["caller_number"] == number
    async for sessions in open_sessions(db_url):
        report = await replay_spool(sessions, tmp_path / "spool", AREA, NOW)
    [order] = emergency_orders(db_url)
    assert [o.order_no for o in report.created] == [order.order_no]
    assert order.call_uniqueid == result["uniqueid"]


async def test_a_call_an_operator_took_opens_an_order_for_a_handset_only(tmp_path: Path
                                                                          ) -> None:
    db_url = f"sqlite:///{tmp_path / 'hotline.sqlite3'}"
    upgrade(db_url)
    numbers = city(db_url)
    quick = {"name": "op1", "answer_delay_s": 2.0, "talk_s": 30.0}
    results = {kind: await engine_down_call(tmp_path, [quick], numbers[kind][0].removeprefix(
        "+86"), hangup_after=10.0) for kind in ("elders", "handsets")}
    for result in results.values():
        assert result["queue"]["operator"] == "op1" and result["hangup_by"] == "caller"
        assert "ABANDONED" not in result["variables"]
        assert result["variables"]["HOTLINE_SPOOLED"] == "1"  # the engine may not know of it
    records = [json.loads(path.read_text(encoding="utf-8"))
               for path in spool_files(tmp_path / "spool")]
    assert sorted(record["uniqueid"] for record in records) == sorted(
        result["uniqueid"] for result in results.values())
    assert {record["member"] for record in records} == {"PJSIP/op1"}
    async for sessions in open_sessions(db_url):
        report = await replay_spool(sessions, tmp_path / "spool", AREA, NOW)
    assert report.answered == [results["elders"]["uniqueid"]] and report.alerts == []
    [order] = emergency_orders(db_url)  # the handset call: its emergency order, once
    assert order.call_uniqueid == results["handsets"]["uniqueid"]
    assert [o.order_no for o in report.created] == [order.order_no]
    assert spool_files(tmp_path / "spool") == []  # both records settled
