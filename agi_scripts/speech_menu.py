#!/usr/bin/env python3
"""Spoken menu for sites without AudioSocket: a classic EAGI script (pyst2, audio on fd 3).

    same => n,EAGI(hotline/speech_menu.py,<menu>,<language>,<prompt>)

``menu`` is ``main`` or ``confirm``; ``language`` the caller's (a language without a grammar
uses the default one); ``prompt`` an Asterisk prompt path played first, which any key
interrupts. Then the caller's audio, which Asterisk writes to fd 3 as 8 kHz signed linear
while no AGI command runs, goes to the engine's recogniser (``ivr.speech``: the same grammar,
model and confidence rule as the engine's AudioSocket menus) until the caller is judged.

Sets ``HOTLINE_SPEECH_OUTCOME`` (understood, key, not_understood, low_confidence, silence,
error), ``HOTLINE_SPEECH_INTENT`` and ``HOTLINE_SPEECH_KEYS``: the keypad digits that mean
the same as what was said or pressed, so the dialplan branches as it does after Read().
The model and limits come from ``HOTLINE_SPEECH__*`` environment variables (as the engine's
``[speech]`` section). Needs the hotline package installed next to Asterisk; loading the model
takes a few seconds per call, which AudioSocket avoids. Every error ends in a clean exit with
outcome ``error``: the dialplan then offers the keypad.
"""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emergency_spool import LineReader, LineWriter, SpoolAGI

AUDIO_FD = 3
READ_BYTES = 320  # 20 ms
AUDIO_TIMEOUT_S = 5.0  # no audio at all for this long: the channel is gone
WATCHDOG_S = 120
ANY_KEY = "0123456789*#"


class _Watchdog(BaseException):
    """The whole script ran out of time."""


def _log(message: str) -> None:
    try:
        sys.stderr.write(f"speech_menu: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def caller_audio(fd: int = AUDIO_FD) -> Iterator[bytes]:
    """The caller's audio from fd 3 until end of file or a stall."""
    while select.select([fd], [], [], AUDIO_TIMEOUT_S)[0]:
        chunk = os.read(fd, READ_BYTES)
        if not chunk:
            return
        yield chunk


def intent_keys(menu: str) -> dict[str, str]:
    """The menu's intents and the key each means."""
    from ivr.menu import CONFIRM_INTENT_KEYS, MAIN_INTENT_KEYS

    return CONFIRM_INTENT_KEYS if menu == "confirm" else MAIN_INTENT_KEYS


def recognise(menu: str, language: str) -> tuple[str, str]:
    """(outcome, intent) for the caller's answer on fd 3."""
    from ivr.config import Settings
    from ivr.speech import SpeechEngine, load_grammars
    from ivr.speech.recognizer import recognise as run

    intents = intent_keys(menu)
    settings = Settings()
    grammars = load_grammars()
    table = grammars.get(language)
    if table is None:
        _log(f"no grammar for language {language!r}: using {settings.ivr.default_language!r}")
        table = grammars[settings.ivr.default_language]
    grammar = table.only(list(intents))
    engine = SpeechEngine(settings.speech)
    try:
        if not engine.usable(grammar):
            raise ValueError(f"the model knows no {grammar.language} phrase of this menu")
        result = run(engine.recognizer(grammar), caller_audio())
    finally:
        engine.close()
    return result.outcome, result.intent or ""


def run(argv: list[str]) -> None:
    """Ask, listen, set the channel variables; errors are logged, never raised."""
    agi: SpoolAGI | None = None
    outcome, intent, keys = "error", "", ""
    try:
        agi = SpoolAGI(LineReader(), LineWriter())
        args = [*argv[1:4], "", "", ""]
        menu, language, prompt = args[0] or "main", args[1] or "zh", args[2]
        if menu not in ("main", "confirm"):
            raise ValueError(f"unknown menu {menu!r}")
        digit = agi.stream_file(prompt, ANY_KEY) if prompt and not agi.broken else ""
        if agi.broken:
            raise ValueError(agi.broken)
        if digit:
            outcome, keys = "key", digit
        else:
            outcome, intent = recognise(menu, language)
            keys = intent_keys(menu).get(intent, "") if outcome == "understood" else ""
    except _Watchdog:
        _log("gave up: watchdog")
    except Exception as exc:  # the call must go on whatever failed
        _log(f"no answer: {type(exc).__name__}: {exc}")
    if agi is not None:
        agi.set("HOTLINE_SPEECH_OUTCOME", outcome)
        agi.set("HOTLINE_SPEECH_INTENT", intent)
        agi.set("HOTLINE_SPEECH_KEYS", keys)
        if agi.broken:
            _log(f"AGI link: {agi.broken}")


def _on_watchdog(_signum: int, _frame: Any) -> None:
    raise _Watchdog()


def main() -> None:
    try:
        signal.signal(signal.SIGALRM, _on_watchdog)
        signal.alarm(WATCHDOG_S)
        run(sys.argv)
        signal.alarm(0)
    except BaseException as exc:  # nothing may fail the call
        _log(f"stopped: {type(exc).__name__}")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
