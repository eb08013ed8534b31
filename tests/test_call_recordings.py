"""Wire-level: the calls operators answer are recorded by MixMonitor (the simulator writes the
WAV file for the time the elder's channel was bridged) and indexed to their call, elder and
order; an emergency's recording goes on through the conference with 120 and is on the order's
timeline. The retention deletes what expired, keeps the emergency's until it is released, and
reports files and index entries without each other."""

from __future__ import annotations

import asyncio
import os
import sys
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from dispatch.console_queries import order_view
from dispatch.db import async_sessionmaker_for, make_async_engine
from dispatch.models import (
    Elder,
    ElderPhone,
    QueueCall,
    Recording,
    RecordingKind,
    WorkOrder,
)
from dispatch.phones import national
from dispatch.recordings import NewRecording, add_recording
from dispatch.regions import RegionScope
from dispatch.retention import prune, release
from tests.callstack import CallStack, open_stack
from tests.test_emergency_bridge import LONG, conference_members, hotline_bridge
from tests.test_family_escalation import handset_with_family

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPEED = 20.0
TALK_S = 6.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    async for opened in open_stack("embedded", tmp_path_factory.mktemp("recorded"), ami=True,
                                   speed=SPEED, sim_args=("--record-dir", "/")):
        yield opened


def recordings_of(stack: CallStack, uniqueid: str) -> list[Any]:
    return stack.rows(select(Recording).where(Recording.uniqueid == uniqueid))


def seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


async def written(stack: CallStack, uniqueid: str) -> tuple[Any, Path]:
    """The call's recording once indexed and its file written (at the channel's end)."""
    rows = await stack.poll(select(Recording).where(Recording.uniqueid == uniqueid), bool)
    [row] = rows
    path = Path(stack.settings.recordings.dir) / row.file
    for _ in range(200):
        if path.exists():
            break
        await asyncio.sleep(0.05)
    return row, path


async def sessions_of(stack: CallStack) -> Any:
    engine = make_async_engine(stack.db_url)
    return engine, async_sessionmaker_for(engine)


async def test_an_answered_call_is_recorded_while_bridged_only(stack: CallStack) -> None:
    await stack.sim.request("operators", operators=[
        {"name": "op1", "answer_delay_s": 3.0, "talk_s": TALK_S, "available": True}])
    number = stack.numbers["elders"][7]
    result = await stack.call(national(number), [{"press": "0", "delay": 1.0}])
    assert result["queue"]["operator"] == "op1"
    row, path = await written(stack, result["uniqueid"])
    assert row.kind == "call" and row.file.startswith("calls/")
    [elder_id] = stack.rows(select(ElderPhone.elder_id).where(ElderPhone.number_e164 == number))
    assert row.elder_id == elder_id[0]
    # the talk, not the wait while the operator's phone rang
    assert seconds(path) == pytest.approx(TALK_S, abs=0.5)


async def test_an_emergency_recording_follows_the_call_into_the_conference(
        stack: CallStack) -> None:
    line, _family = handset_with_family(stack.db_url, 1)
    await stack.sim.request("operators", operators=[
        {"name": "op1", "answer_delay_s": 2.0, "talk_s": LONG}])
    calls = {asyncio.create_task(stack.call(national(line), hangup_after=LONG))}
    [(uniqueid, order_no)] = await stack.poll(
        select(QueueCall.uniqueid, WorkOrder.order_no)
        .join(WorkOrder, WorkOrder.call_uniqueid == QueueCall.uniqueid)
        .where(QueueCall.answered_at.is_not(None)), bool)
    await stack.sim.request("phones", phones={
        "120": {"answer": "answer", "ring_s": 2.0, "hangup_after": LONG}})
    code, bridged = await hotline_bridge(stack, order_no, "120")
    assert code == 0 and bridged["redirected"]
    members = await conference_members(stack, 3)
    elder = next(m["name"] for m in members if m["uniqueid"] == uniqueid)
    await asyncio.sleep(8.0 / SPEED)  # 8 s in the conference
    assert stack.engine is not None
    await stack.engine.ami.action("Hangup", {"Channel": elder})
    [result] = await asyncio.wait_for(asyncio.gather(*calls), 60)
    row, path = await written(stack, uniqueid)
    stamps = {app: at for at, app, _data in result["apps"]}
    in_conference = result["ended_at"] - stamps["ConfBridge"]
    with_operator = stamps["ConfBridge"] - result["queue"]["answered_at"]
    assert in_conference > 7.0
    # the whole conversation: the operator's part and the conference's
    assert seconds(path) == pytest.approx(with_operator + in_conference, abs=1.0)
    engine, sessions = await sessions_of(stack)
    try:
        async with sessions() as session:
            [elder_county] = stack.rows(select(Elder.county_code).where(Elder.id == row.elder_id))
            view = await order_view(session, RegionScope.parse(f"county:{elder_county[0]}"),
                                    order_no)
    finally:
        await engine.dispose()
    assert view is not None
    assert [(e.kind, e.recording) for e in view.timeline if e.recording] == [
        ("recording_call", row.token)]


async def test_the_retention_deletes_the_expired_and_keeps_the_held(stack: CallStack) -> None:
    rows = stack.rows(select(Recording).order_by(Recording.id))
    assert [r.kind for r in rows] == ["call", "call"]  # the two answered calls above
    ordinary, emergency = rows
    root = Path(stack.settings.recordings.dir)
    stray = root / "calls" / "stray.wav"
    stray.write_bytes(b"RIFF")
    os.utime(stray, (0, 0))
    engine, sessions = await sessions_of(stack)
    later = datetime.now(UTC) + timedelta(days=181)
    unanswered = NewRecording(kind=RecordingKind.CALL, uniqueid="1796400000.99",
                              file="calls/20261204/1796400000.99.wav",
                              started_at=later - timedelta(days=179), duration_s=None)
    try:
        async with sessions() as session:
            await add_recording(session, unanswered)  # no operator answered: no file
            report = await prune(session, root, later, 180)
            assert report.deleted == [ordinary.file] and report.held == 1
            assert report.orphan_files == ["calls/stray.wav"] and report.missing_files == []
            assert report.never_recorded == [unanswered.file]
            assert not (root / ordinary.file).exists() and (root / emergency.file).exists()
            assert await release(session, emergency.token, later)
            again = await prune(session, root, later, 180)
            assert again.deleted == [emergency.file] and again.held == 0
            assert not await release(session, emergency.token, later)  # deleted: nothing held
            stray.unlink()
            (root / "calls" / "gone.wav").unlink(missing_ok=True)
    finally:
        await engine.dispose()
    deleted = stack.rows(select(Recording.deleted_at).where(Recording.deleted_at.is_not(None)))
    assert len(deleted) == 3


async def test_the_retention_command_reports(stack: CallStack) -> None:
    env = {**os.environ, "HOTLINE_DATABASE__URL": stack.db_url, "HOTLINE_CONFIG": "",
           "HOTLINE_RECORDINGS__DIR": str(stack.settings.recordings.dir),
           "HOTLINE_AMI__ENABLED": "false"}

    async def hotline(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivr.cli", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 120)
        return int(process.returncode or 0), out.decode() + err.decode(errors="replace")

    code, out = await hotline("recordings", "prune")
    assert code == 0 and out.startswith("deleted 0 expired recording(s); kept 0 held"), out
    code, out = await hotline("recordings", "release", "no-such-token")
    assert code == 1 and "no held recording 'no-such-token'" in out
