"""Wire-level: the spoken menu of the 12349 call, engine and simulator over TCP, real Vosk.

The engine runs with speech on and the Korean Vosk model (the test stand-in for Mandarin, same
code path); elders whose preferred language is Korean hear the spoken menu, and the
simulator's callers speak espeak-ng Korean over AudioSocket (or into RECORD FILE). What the
caller heard of a prompt played over AudioSocket is what the simulator reports receiving.
The classic EAGI script is run as Asterisk runs it: AGI environment on stdin, commands on
stdout, caller audio on fd 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from dispatch.db import make_sync_engine
from dispatch.models import Elder, ElderPhone
from ivr.assets import agi_scripts_dir
from ivr.audio import pcm_to_wav
from ivr.demo.scenario import prompt_seconds
from tests.callstack import CallStack, open_stack
from tests.speech_audio import KO_MODEL_PATH, korean_call_audio, silence
from tests.test_inbound_calls import (
    CONFIRM_KEY_DELAY,
    MENU_KEY_DELAY,
    heard,
    national,
    press,
    reassured_in_queue,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SPEED = 10.0
FRAME_S = 0.02  # one AudioSocket frame: the granularity of the caller's timing
MENU_S = prompt_seconds("menu_main_spoken")
CONFIRM_S = max(prompt_seconds(f"confirm_{s}_spoken") for s in ("meal", "housekeeping", "health"))
LISTEN = {"silent": True}
EAGI_SCRIPT = agi_scripts_dir() / "speech_menu.py"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    folder = tmp_path_factory.mktemp("spoken")
    speech = {"enabled": True, "model_path": str(KO_MODEL_PATH), "port": 0, "workers": 2,
              "record_dir": str(folder / "recordings")}
    # The simulator records where the engine asks, as Asterisk does with absolute paths.
    async for opened in open_stack("embedded", folder, elders=60, speed=SPEED,
                                   engine_overrides={"speech": speech},
                                   sim_args=("--record-dir", "/")):
        yield opened


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """The path of a WAV file of ``text`` spoken in Korean."""
    folder = tmp_path_factory.mktemp("voice")
    made: dict[str, str] = {}

    def make(text: str) -> str:
        if text not in made:
            pcm = korean_call_audio(text, lead_s=0.0, tail_s=0.0)
            made[text] = str(pcm_to_wav(pcm, folder / f"{len(made)}.wav"))
        return made[text]

    return make


def elder(stack: CallStack, index: int, language: str | None = "ko") -> str:
    """The national number of the ``index``-th sampled elder, now preferring ``language``."""
    number = stack.numbers["elders"][index]
    if language is not None:
        engine = make_sync_engine(stack.db_url)
        try:
            # one statement: a read then a write in one SQLite transaction fails at once
            # ("database is locked") if the engine wrote in between
            with engine.begin() as conn:
                changed = conn.execute(update(Elder).where(Elder.id == select(
                    ElderPhone.elder_id).where(ElderPhone.number_e164 == number)
                    .scalar_subquery()).values(preferred_language=language))
                assert changed.rowcount == 1
        finally:
            engine.dispose()
    return national(number)


def say(path: str, delay: float) -> dict[str, Any]:
    return {"say": path, "delay": delay}


@pytest.mark.parametrize(("index", "word", "service"), [(1, "밥", "meal"),
                                                        (2, "도우미", "housekeeping")])
async def test_a_spoken_choice_becomes_the_right_order(
        stack: CallStack, voice: Callable[[str], str], index: int, word: str, service: str
) -> None:
    script = [LISTEN, say(voice(word), MENU_S + 1.0), say(voice("네"), CONFIRM_S + 1.0)]
    result = await stack.call(elder(stack, index), script)
    call, order = stack.record(result["uniqueid"])
    assert call.disposition == "order" and order.service == service
    assert result["variables"]["HOTLINE_ORDER_NO"] == order.order_no
    menu, confirm = result["audiosocket"]
    assert menu["result"] == confirm["result"] == 0  # ended by the engine's hangup frame
    assert menu["heard_s"] == pytest.approx(MENU_S, abs=0.05)  # the whole prompt, then speech
    assert menu["said"][0][0] >= MENU_S + 1.0 - FRAME_S  # spoken after the whole prompt
    assert heard(result)[-1] == "order_goodbye" and "menu_main" not in heard(result)


async def test_speech_while_the_prompt_plays_interrupts_it(
        stack: CallStack, voice: Callable[[str], str]) -> None:
    script = [LISTEN, say(voice("도우미"), 2.0), say(voice("네"), 1.5)]
    result = await stack.call(elder(stack, 3), script)
    _, order = stack.record(result["uniqueid"])
    assert order is not None and order.service == "housekeeping"
    for session, spoke_at, prompt_s in zip(result["audiosocket"], (2.0, 1.5), (MENU_S, CONFIRM_S),
                                           strict=True):
        # the caller spoke no earlier than scripted (later under load: the clock runs fast) ...
        said_at = session["said"][0][0]
        assert said_at >= spoke_at - FRAME_S
        # ... and the prompt stopped within a second and a half of that, before its end
        assert said_at < session["heard_s"] < min(said_at + 1.5, prompt_s)


async def test_saying_help_takes_the_emergency_path_without_another_menu(
        stack: CallStack, voice: Callable[[str], str]) -> None:
    result = await stack.call(elder(stack, 4), [LISTEN, say(voice("도와줘"), 2.0)])
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason) == ("operator", "caller_emergency")
    assert order is not None and order.service == "emergency"
    assert result["variables"]["HOTLINE_PRIORITY"] == "10"
    assert len(result["audiosocket"]) == 1 and reassured_in_queue(result) == "emergency"
    assert result["variables"]["HOTLINE_LANGUAGE"] == "zh"  # no ko prompts: the default's


async def test_unrelated_speech_is_asked_again_then_a_human(
        stack: CallStack, voice: Callable[[str], str]) -> None:
    script = [LISTEN, say(voice("안녕하세요"), 1.0), say(voice("텔레비전"), 1.0)]
    result = await stack.call(elder(stack, 5), script)
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason) == ("operator", "speech_not_understood")
    assert order is None and result["variables"]["HOTLINE_REASON"] == "speech_not_understood"
    assert heard(result).count("say_again") == 1
    assert [s["result"] for s in result["audiosocket"]] == [0, 0]
    assert result["queue"] is not None and result["queue"]["answered_at"] is not None


async def test_a_key_pressed_while_listening_is_the_answer(stack: CallStack) -> None:
    result = await stack.call(elder(stack, 6), [LISTEN, press("3", 2.0), press("1", 2.0)])
    _, order = stack.record(result["uniqueid"])
    assert order is not None and order.service == "health"
    menu, confirm = result["audiosocket"]
    assert [p[1] for p in menu["pressed"]] == ["3"] and [p[1] for p in confirm["pressed"]] == ["1"]
    assert menu["heard_s"] < 3.0 and confirm["heard_s"] < 3.0  # keys cut the prompt too


async def test_caller_hanging_up_while_listened_to_gets_a_call_back(stack: CallStack) -> None:
    result = await stack.call(elder(stack, 12), [LISTEN, {"hangup": True, "delay": 3.0}])
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason, order) == ("abandoned", "callback_needed", None)
    [session] = result["audiosocket"]
    assert session["ended_by"] == "caller" and session["result"] == -1


async def test_preferred_language_selects_the_grammar(
        stack: CallStack, voice: Callable[[str], str], caplog: pytest.LogCaptureFixture) -> None:
    # Mandarin callers: the test model knows no Mandarin phrase, so they get the keypad menu.
    keypad = [LISTEN, press("2", MENU_KEY_DELAY), press("1", CONFIRM_KEY_DELAY)]
    for language in ("zh", "xx"):
        with caplog.at_level(logging.WARNING, logger="ivr.speech.service"):
            result = await stack.call(elder(stack, 7 if language == "zh" else 8, language),
                                      keypad)
        _, order = stack.record(result["uniqueid"])
        assert order is not None and order.service == "housekeeping"
        assert result["audiosocket"] == [] and "menu_main" in heard(result)
    assert "no spoken-menu grammar for language 'xx': using 'zh'" in caplog.text
    # The same word from a Korean-speaking elder is understood.
    result = await stack.call(elder(stack, 9), [LISTEN, say(voice("도우미"), 1.0),
                                                say(voice("네"), 1.0)])
    assert stack.record(result["uniqueid"])[1].service == "housekeeping"


async def test_audiosocket_that_cannot_connect_falls_back_to_the_keypad(
        stack: CallStack) -> None:
    assert stack.engine is not None and stack.engine.speech is not None
    settings = stack.engine.speech.settings
    settings.host = "127.0.0.2"  # nothing listens there: AudioSocket fails to connect
    try:
        keypad = [LISTEN, press("1", MENU_KEY_DELAY), press("1", CONFIRM_KEY_DELAY)]
        result = await stack.call(elder(stack, 10), keypad)
    finally:
        settings.host = "127.0.0.1"
    call, order = stack.record(result["uniqueid"])
    assert call.disposition == "order" and order.service == "meal"
    assert "menu_main" in heard(result) and "confirm_meal" in heard(result)
    apps = [app for app in result["agi"][0]["commands"] if app[0].startswith("EXEC")]
    assert len(apps) == 1  # tried once, then the keypad for the rest of the call


async def test_record_file_path_recognises_the_recording(
        stack: CallStack, voice: Callable[[str], str]) -> None:
    assert stack.engine is not None and stack.engine.speech is not None
    settings = stack.engine.speech.settings
    settings.transport = "record"
    try:
        script = [LISTEN, LISTEN, say(voice("밥"), 0.5), LISTEN, say(voice("네"), 0.5)]
        result = await stack.call(elder(stack, 11), script)
    finally:
        settings.transport = "audiosocket"
    call, order = stack.record(result["uniqueid"])
    assert call.disposition == "order" and order.service == "meal"
    assert {"menu_main_spoken", "confirm_meal_spoken"} <= set(heard(result))
    records = [c for c in result["agi"][0]["commands"] if c[0].startswith("RECORD FILE")]
    assert len(records) == 2 and result["audiosocket"] == []
    assert list(Path(settings.record_dir).glob("*")) == []  # recordings are not kept


# -- the classic EAGI script -------------------------------------------------------------------

EAGI_ENV = (
    "agi_request: hotline/speech_menu.py\nagi_channel: PJSIP/trunk-00000002\n"
    "agi_language: zh\nagi_type: PJSIP\nagi_uniqueid: 1700000010.1\nagi_enhanced: 1.0\n"
    "agi_callerid: 13800138000\nagi_arg_1: main\nagi_arg_2: ko\n"
    "agi_arg_3: hotline/zh/menu_main_spoken\n\n"
)


# Puts the audio pipe on fd 3, as Asterisk does for EAGI, then runs the script.
AUDIO_ON_FD_3 = ("import os, sys; fd = int(sys.argv[1]); os.dup2(fd, 3); os.close(fd); "
                 "os.execv(sys.argv[2], sys.argv[2:])")


async def run_eagi(audio: bytes, prompt_reply: str) -> dict[str, str]:
    """Run the script as Asterisk runs EAGI; return the variables it set."""
    read_end, write_end = os.pipe()
    env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin:/bin"]),
           "HOTLINE_SPEECH__MODEL_PATH": str(KO_MODEL_PATH)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AUDIO_ON_FD_3, str(read_end), str(EAGI_SCRIPT),
        "main", "ko", "hotline/zh/menu_main_spoken", pass_fds=(read_end,),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env)
    os.close(read_end)

    def feed() -> None:
        with contextlib.suppress(OSError), open(write_end, "wb") as out:
            out.write(audio)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    assert process.stdin is not None and process.stdout is not None
    variables: dict[str, str] = {}
    try:
        process.stdin.write(EAGI_ENV.encode("utf-8"))
        await process.stdin.drain()
        while line := await asyncio.wait_for(process.stdout.readline(), 60):
            command = line.decode("utf-8").rstrip("\n")
            reply = "200 result=1\n"
            if command.startswith("STREAM FILE"):
                reply = prompt_reply
            elif command.startswith("SET VARIABLE"):
                _verb, _word, name, value = command.split(" ", 3)
                variables[name.strip('"')] = value.strip('"')
            process.stdin.write(reply.encode("utf-8"))
            await process.stdin.drain()
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        writer.join(10)
    return variables


@pytest.mark.parametrize(("said", "prompt_reply", "expected"), [
    ("밥", "200 result=0 endpos=8000\n", ({"understood"}, "meal", "1")),
    ("오늘 날씨가 좋네요", "200 result=0 endpos=8000\n",
     ({"not_understood", "low_confidence"}, "", "")),
    (None, "200 result=50 endpos=4000\n", ({"key"}, "", "2")),  # "2" pressed during the prompt
])
async def test_eagi_script_recognises_audio_on_fd_3(
        said: str | None, prompt_reply: str, expected: tuple[set[str], str, str]) -> None:
    audio = korean_call_audio(said) if said else silence(1.0)
    variables = await run_eagi(audio, prompt_reply)
    outcomes, intent, keys = expected
    assert variables["HOTLINE_SPEECH_OUTCOME"] in outcomes
    assert variables["HOTLINE_SPEECH_INTENT"] == intent
    assert variables["HOTLINE_SPEECH_KEYS"] == keys
