"""The engine-down emergency spool: the classic AGI script, the shipped dialplan, the replay."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.citygen import generate_city, sample_numbers
from dispatch.db import async_sessionmaker_for, make_async_engine, make_sync_engine, upgrade
from dispatch.models import WorkOrder
from dispatch.orders import ServiceType, create_order
from dispatch.spool_replay import QUARANTINE, REPLAYED, replay_spool, settle_alert
from ivr.assets import agi_scripts_dir
from ivr.demo.simproc import SimulatorProcess
from tests.ports import closed_port
from tests.test_inbound_calls import heard

SCRIPT = agi_scripts_dir() / "emergency_spool.py"
AREA = "931"
NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
STEP_TIMEOUT_S = 15.0


def emergency_orders(db_url: str) -> list[Any]:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(
                select(WorkOrder).where(WorkOrder.service == ServiceType.EMERGENCY)
                .order_by(WorkOrder.call_uniqueid)
            ))
    finally:
        engine.dispose()


def city(db_url: str) -> dict[str, list[str]]:
    generate_city(db_url, elders=20, vendors=5, seed=99)
    return sample_numbers(db_url, 3, 99)


async def open_sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_async_engine(db_url, pool_size=2)
    try:
        yield async_sessionmaker_for(engine)
    finally:
        await engine.dispose()


def spool_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


# --- (a) the shipped dialplan under the simulator: engine and operators both down ---------

async def test_engine_and_operators_down_the_call_is_spooled_and_replayed(tmp_path: Path
                                                                          ) -> None:
    db_url = f"sqlite:///{tmp_path / 'hotline.sqlite3'}"
    upgrade(db_url)
    elder_number = city(db_url)["elders"][0]
    spool = tmp_path / "spool"
    sim = await SimulatorProcess.start(
        agi_url=f"agi://127.0.0.1:{closed_port()}", speed=30.0, log_path=tmp_path / "sim.log",
        globals_={"HOTLINE_QUEUE_TIMEOUT": "3", "HOTLINE_SPOOL_DIR": str(spool)},
    )
    try:
        await sim.request("operators", operators=[])
        result = await sim.call({"number": elder_number.removeprefix("+86"), "name": "张三",
                                 "to": "12349", "context": "from-pstn", "script": [],
                                 "hangup_after": None})
    finally:
        await sim.stop()
    variables = result["variables"]
    assert variables["HOTLINE_REASON"] == "engine_FAILURE"
    assert result["queue"]["answered_at"] is None
    assert variables["QUEUESTATUS"] == "TIMEOUT"
    assert variables["HOTLINE_SPOOLED"] == "1", result
    assert "operator_unavailable" in heard(result)  # the promise of a call-back stays
    [path] = spool_files(spool)
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["caller_number"] == elder_number.removeprefix("+86")
    assert record["caller_name"] == "张三"
    assert record["uniqueid"] == result["uniqueid"]
    assert record["linkedid"] and record["reason"] == "engine_FAILURE"
    assert record["queuestatus"] == "TIMEOUT"

    async for sessions in open_sessions(db_url):
        report = await replay_spool(sessions, spool, AREA, NOW)
    [order] = emergency_orders(db_url)
    assert [o.order_no for o in report.created] == [order.order_no]
    assert order.call_uniqueid == result["uniqueid"] and order.priority == 0
    assert spool_files(spool) == [] and len(spool_files(spool / REPLAYED)) == 1


# --- (b) replay on both storage backends ---------------------------------------------------

def write_record(folder: Path, uniqueid: str, number: str, **extra: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"version": 1, "uniqueid": uniqueid, "linkedid": uniqueid, "channel": "PJSIP/x",
              "caller_number": number, "caller_name": "", "reason": "engine_FAILURE",
              "queuestatus": "TIMEOUT", "spooled_at": "2026-03-01T08:00:00+00:00", **extra}
    path = folder / f"20260301T080000-{uniqueid}.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


MALFORMED = {
    "garbage.json": b"\x00\xffnot json",
    "array.json": b"[1, 2]",
    "no-uid.json": json.dumps({"version": 1, "spooled_at": "2026-03-01T08:00:00+00:00"}).encode(),
    "future.json": json.dumps({"version": 9, "uniqueid": "1.9"}).encode(),
    "naive-time.json": json.dumps({"version": 1, "uniqueid": "1.8",
                                   "spooled_at": "2026-03-01T08:00:00"}).encode(),
    "huge.json": b"{" + b" " * 20000 + b"}",
}


async def test_replay_makes_one_emergency_order_per_record(migrated_db_url: str,
                                                          tmp_path: Path) -> None:
    numbers = city(migrated_db_url)
    spool = tmp_path / "spool"
    write_record(spool, "1700000001.1", numbers["elders"][0])
    write_record(spool, "1700000001.2", numbers["handsets"][0].removeprefix("+86"))
    write_record(spool, "1700000001.3", numbers["family"][0])
    write_record(spool, "1700000001.4", numbers["unknown"][0])
    write_record(spool, "1700000001.5", "")  # withheld
    for name, data in MALFORMED.items():
        (spool / name).write_bytes(data)
    (spool / ".20260301T080001-1.6.json.tmp").write_text("{")  # a write still in progress

    async for sessions in open_sessions(migrated_db_url):
        first = await replay_spool(sessions, spool, AREA, NOW)
        second = await replay_spool(sessions, spool, AREA, NOW)
        for alert in second.alerts:
            assert settle_alert(alert)
        third = await replay_spool(sessions, spool, AREA, NOW)

    orders = emergency_orders(migrated_db_url)
    assert [o.call_uniqueid for o in orders] == ["1700000001.1", "1700000001.2", "1700000001.3"]
    assert [o.source.value for o in orders] == ["phone", "handset", "phone"]
    assert {(o.priority, o.requested_by, o.status.value) for o in orders} == {(0, "spool", "new")}
    assert sorted(o.order_no for o in first.created) == sorted(o.order_no for o in orders)
    assert sorted((a.record.uniqueid, a.caller_status) for a in first.alerts) == [
        ("1700000001.4", "unknown"), ("1700000001.5", "withheld")]
    assert sorted(name for name, _ in first.quarantined) == sorted(MALFORMED)
    assert first.failed == [] and not first.busy

    assert second.created == [] and second.quarantined == [] and len(second.alerts) == 2
    assert third.created == [] and third.alerts == [] and third.orders == []
    assert spool_files(spool) == []
    assert len(spool_files(spool / REPLAYED)) == 5
    quarantine = spool / QUARANTINE
    assert sorted(p.name for p in spool_files(quarantine)) == sorted(MALFORMED)
    reason = (quarantine / "future.json.reason").read_text(encoding="utf-8")
    assert "version" in reason
    # private whatever the umask: the reason may quote a caller's number
    assert all(stat.S_IMODE(note.stat().st_mode) & 0o007 == 0
               for note in quarantine.glob("*.reason"))
    assert (spool / ".20260301T080001-1.6.json.tmp").exists()


async def test_a_record_whose_order_was_committed_before_a_crash_is_not_doubled(
        migrated_db_url: str, tmp_path: Path) -> None:
    numbers = city(migrated_db_url)
    spool = tmp_path / "spool"
    write_record(spool, "1700000002.1", numbers["elders"][1])
    async for sessions in open_sessions(migrated_db_url):
        async with sessions() as session:
            existing = await create_order(
                session, elder_id=1, service=ServiceType.EMERGENCY, source="phone",
                call_uniqueid="1700000002.1", requested_by="spool", at=NOW)
        report = await replay_spool(sessions, spool, AREA, NOW)
    assert report.created == []
    assert [(o.order_no, o.created) for o in report.orders] == [(existing.order_no, False)]
    assert len(emergency_orders(migrated_db_url)) == 1
    assert spool_files(spool) == [] and len(spool_files(spool / REPLAYED)) == 1


async def test_database_down_leaves_the_records_for_the_next_run(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    path = write_record(spool, "1700000003.1", "13800138000")
    dead = f"postgresql://postgres@127.0.0.1:{closed_port()}/hotline"
    async for sessions in open_sessions(dead):
        report = await replay_spool(sessions, spool, AREA, NOW)
    assert [name for name, _ in report.failed] == [path.name]
    assert "13800138000" not in repr(report.failed)
    assert report.orders == [] and path.exists()


async def test_replay_of_a_missing_spool_is_empty(tmp_path: Path) -> None:
    async for sessions in open_sessions(f"sqlite:///{tmp_path / 'x.sqlite3'}"):
        report = await replay_spool(sessions, tmp_path / "absent", AREA, NOW)
    assert report.orders == [] and report.failed == [] and report.alerts == []


# --- (c) the script on its own: hangups, dead peers, bad spool directories -----------------

ENV = (
    "agi_request: hotline/emergency_spool.py\nagi_channel: PJSIP/trunk-00000001\n"
    "agi_language: zh\nagi_type: PJSIP\nagi_uniqueid: 1700000009.7\n"
    "agi_callerid: 13800138000\nagi_calleridname: 王五\nagi_arg_1: {spool}\n\n"
)
VALUES = {"CHANNEL(linkedid)": "1700000009.1", "HOTLINE_REASON": "engine_FAILURE",
          "QUEUESTATUS": "TIMEOUT"}
Peer = Callable[[str, int], str | None]  # (command, index) -> reply text; None: say nothing


def asterisk(command: str, _index: int) -> str:
    if command.startswith("GET VARIABLE"):
        name = command.split('"')[1]
        return f"200 result=1 ({VALUES[name]})\n" if name in VALUES else "200 result=0\n"
    return "200 result=1\n"


async def run_script(spool: Path | str, peer: Peer, *, sighup_after: int | None = None,
                     close_after_env: bool = False, ast_spool_dir: Path | None = None
                     ) -> tuple[int, list[str]]:
    """Run the script as Asterisk does (environment, commands, replies) and collect commands."""
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin:/bin"]),
           "AST_SPOOL_DIR": str(ast_spool_dir or "/nonexistent")}
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), str(spool), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env)
    assert process.stdin is not None and process.stdout is not None
    commands: list[str] = []
    try:
        process.stdin.write(ENV.format(spool=spool).encode("utf-8"))
        await process.stdin.drain()
        if close_after_env:
            process.stdin.close()
        while line := await asyncio.wait_for(process.stdout.readline(), STEP_TIMEOUT_S):
            command = line.decode("utf-8").rstrip("\n")
            commands.append(command)
            if sighup_after == len(commands):
                process.send_signal(signal.SIGHUP)
            reply = peer(command, len(commands))
            if reply is not None and not close_after_env:
                process.stdin.write(reply.encode("utf-8"))
                await process.stdin.drain()
        return await asyncio.wait_for(process.wait(), STEP_TIMEOUT_S), commands
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def only_record(folder: Path) -> dict[str, Any]:
    [path] = spool_files(folder)
    return json.loads(path.read_text(encoding="utf-8"))


async def test_script_survives_a_hangup_line_and_sighup(tmp_path: Path) -> None:
    def hangup_first(command: str, index: int) -> str:
        reply = asterisk(command, index)
        return ("HANGUP\n" + reply) if index == 1 else reply

    spool = tmp_path / "spool"
    code, commands = await run_script(spool, hangup_first, sighup_after=1)
    assert code == 0
    assert commands[-1] == 'SET VARIABLE "HOTLINE_SPOOLED" "1"'
    record = only_record(spool)
    assert record["linkedid"] == "1700000009.1" and record["queuestatus"] == "TIMEOUT"
    assert record["caller_name"] == "王五" and record["uniqueid"] == "1700000009.7"


async def test_script_creates_a_missing_spool_dir(tmp_path: Path) -> None:
    spool = tmp_path / "not" / "yet" / "there"
    code, commands = await run_script(spool, asterisk)
    assert code == 0 and commands[-1] == 'SET VARIABLE "HOTLINE_SPOOLED" "1"'
    assert only_record(spool)["caller_number"] == "13800138000"


async def test_script_exits_cleanly_when_the_spool_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, commands = await run_script(blocker / "spool", asterisk)
    assert code == 0 and commands[-1] == 'SET VARIABLE "HOTLINE_SPOOLED" "0"'


async def test_script_with_a_dead_peer_still_spools_what_it_knows(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    code, _ = await run_script(spool, asterisk, close_after_env=True)
    assert code == 0
    record = only_record(spool)
    assert record["caller_number"] == "13800138000" and record["linkedid"] == ""


async def test_script_with_a_garbage_peer_exits_cleanly(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    code, commands = await run_script(spool, lambda _c, _i: "\x00garbage\xff" * 2000 + "\n")
    assert code == 0 and len(commands) == 1
    assert only_record(spool)["uniqueid"] == "1700000009.7"


async def test_script_with_a_silent_peer_does_not_hang(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    code, commands = await run_script(spool, lambda _c, _i: None)
    assert code == 0 and len(commands) == 1
    assert only_record(spool)["reason"] == ""


@pytest.mark.parametrize("argument", ["", "  "])
async def test_script_default_spool_is_under_ast_spool_dir(tmp_path: Path, argument: str
                                                           ) -> None:
    code, commands = await run_script(argument, asterisk, ast_spool_dir=tmp_path)
    assert code == 0 and commands[-1] == 'SET VARIABLE "HOTLINE_SPOOLED" "1"'
    assert only_record(tmp_path / "hotline")["uniqueid"] == "1700000009.7"
