"""Wire-level: callers' spoken messages. Outside the operators' hours, a caller who asks for a
human (not an emergency) leaves a message; so does one whose queue wait timed out. The
simulator writes what the caller said into the WAV file RECORD FILE names, in the recordings
folder it shares with the engine; the message is indexed to the caller and shows on the
worklist as a caller to call back, with its recording, which an operator of the caller's
county plays in the console's live page (Chromium). A handset emergency after hours still
goes to the operators, and a caller who says nothing leaves no message."""

from __future__ import annotations

import wave
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import select

from dispatch.accounts import Role
from dispatch.db import async_sessionmaker_for, make_async_engine
from dispatch.models import AuditEntry, Call, Elder, Recording, RecordingKind
from dispatch.phones import national
from dispatch.worklist import CALL_BACK, worklist
from ivr.assets import prompts_dir
from tests.browser import account, async_chromium
from tests.callstack import CallStack, open_stack
from tests.test_console_live import TIMEOUT_MS, signed_in, start_console

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPEECH = prompts_dir() / "zh" / "welcome.wav"  # a real Mandarin voice, 8 kHz mono


def closed_now() -> tuple[time, time]:
    """Operator hours that exclude the next hours of local time, whatever the date."""
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    opens = (local + timedelta(hours=8)).time().replace(second=0, microsecond=0)
    return opens, (local + timedelta(hours=9)).time().replace(second=0, microsecond=0)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    folder = tmp_path_factory.mktemp("messages")
    async for opened in open_stack(
            "embedded", folder, ami=True,
            engine_overrides={"ivr": {"operator_hours": closed_now()},
                              "recordings": {"dir": str(folder / "recordings"),
                                             "message_silence_s": 2}},
            sim_args=("--record-dir", "/")):
        yield opened


def say(path: Path, delay: float) -> dict[str, Any]:
    return {"say": str(path), "delay": delay}


def press(key: str, delay: float = 1.0) -> dict[str, Any]:
    return {"press": key, "delay": delay}


def messages(stack: CallStack, uniqueid: str) -> list[Any]:
    return stack.rows(select(Recording).where(Recording.uniqueid == uniqueid,
                                              Recording.kind == RecordingKind.MESSAGE))


async def call_backs(stack: CallStack) -> list[Any]:
    engine = make_async_engine(stack.db_url)
    try:
        async with async_sessionmaker_for(engine)() as session:
            items = await worklist(session, datetime.now(ZoneInfo("UTC")) + timedelta(days=2),
                                   600.0, 7 * 86400.0)
    finally:
        await engine.dispose()
    return [item for item in items if item.section == CALL_BACK]


def pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        return wav.readframes(wav.getnframes())


def heard(result: dict[str, Any]) -> list[str]:
    return [entry[1].rsplit("/", 1)[-1] for entry in result["heard"]]


async def test_after_hours_a_caller_leaves_a_message_for_a_call_back(stack: CallStack) -> None:
    number = stack.numbers["elders"][3]
    result = await stack.call(national(number), [press("0"), say(SPEECH, 0.5)])
    assert result["queue"] is None  # nobody to answer: no queue
    assert result["variables"]["HOTLINE_MESSAGE"] == "stored"
    assert heard(result)[-2:] == ["message_invite", "message_thanks"]
    [message] = messages(stack, result["uniqueid"])
    assert message.kind == "message" and message.caller_number == number
    assert message.elder_id is not None and message.order_id is None
    recorded = pcm(Path(stack.settings.recordings.dir) / message.file)
    assert pcm(SPEECH) in recorded  # what the caller said, as the PBX wrote it
    assert message.duration_s == pytest.approx(len(recorded) / 16000, abs=0.2)
    [call] = stack.rows(select(Call.disposition, Call.reason)
                        .where(Call.uniqueid == result["uniqueid"]))
    assert tuple(call) == ("message", "caller_request")
    items = [item for item in await call_backs(stack) if item.call == result["uniqueid"]]
    assert [(item.recording, item.note.startswith("left a message")) for item in items] == [
        (message.token, True)]
    # an operator of the elder's county has it on the live worklist, and the page plays it
    duration = await played_in_the_console(stack, message)
    assert duration == pytest.approx(message.duration_s, abs=0.2)
    played = stack.rows(select(AuditEntry.account_name)
                        .where(AuditEntry.action == "recording_played",
                               AuditEntry.target == message.token))
    assert [row.account_name for row in played] == ["night"]


async def played_in_the_console(stack: CallStack, message: Any) -> float:
    """Sign an operator of the message's county in; the seconds its player loads."""
    [county] = stack.rows(select(Elder.county_code).where(Elder.id == message.elder_id))
    account(stack.db_url, "night", Role.OPERATOR, f"county:{county.county_code}")
    with start_console(stack) as console:
        async with async_chromium() as browser, signed_in(browser, console.url, "night") as page:
            player = page.locator(f'audio.message[src="/recordings/{message.token}"]')
            await player.wait_for(timeout=TIMEOUT_MS)
            return float(await player.evaluate("""audio => new Promise((done, fail) => {
                audio.addEventListener("loadedmetadata", () => done(audio.duration));
                audio.addEventListener("error", () => fail(new Error("not playable")));
                audio.load();
            })"""))


async def test_an_emergency_after_hours_still_reaches_the_operators(stack: CallStack) -> None:
    result = await stack.call(national(stack.numbers["handsets"][0]))
    assert result["queue"] is not None and result["queue"]["priority"] == 10
    assert "HOTLINE_MESSAGE" not in result["variables"]
    assert messages(stack, result["uniqueid"]) == []


async def test_a_caller_who_says_nothing_leaves_no_message(stack: CallStack) -> None:
    result = await stack.call(national(stack.numbers["elders"][4]), [press("0")])
    assert result["variables"].get("HOTLINE_MESSAGE", "") == ""
    assert messages(stack, result["uniqueid"]) == []
    folder = Path(stack.settings.recordings.dir) / "messages"
    assert not [p for p in folder.rglob("*.wav") if result["uniqueid"] in p.name]


async def test_a_caller_whose_queue_wait_timed_out_leaves_a_message(
        tmp_path: Path) -> None:
    async for stack in open_stack(
            "embedded", tmp_path, ami=True,
            engine_overrides={"recordings": {"dir": str(tmp_path / "recordings"),
                                             "message_silence_s": 2}},
            sim_args=("--record-dir", "/"),
            sim_globals={"HOTLINE_OVERFLOW_S": "2", "HOTLINE_QUEUE_TIMEOUT": "3"}):
        await stack.sim.request("operators", operators=[])
        result = await stack.call(national(stack.numbers["elders"][5]),
                                  [press("0"), say(SPEECH, 0.5)])
        [message] = messages(stack, result["uniqueid"])
        items = [item for item in await call_backs(stack) if item.call == result["uniqueid"]]
    assert result["queue"] is not None and result["queue"]["answered_at"] is None
    assert result["variables"]["HOTLINE_MESSAGE"] == "stored"
    assert "HOTLINE_SPOOLED" not in result["variables"]  # not an emergency for the spool
    assert [item.recording for item in items] == [message.token]  # one item: the message
