"""Scripted parties: elders who call, phones that are dialled, and what they heard and pressed.

A script is a list of steps consumed one per input opportunity (GET DATA, WAIT FOR DIGIT,
STREAM FILE with escape digits, Background, Read, WaitExten):
``{"press": "12#", "delay": 1.0, "gap": 0.4}``, ``{"silent": true}``,
``{"hangup": true, "delay": 1.0}``, ``{"say": "/path/to/file.wav", "delay": 1.0}`` (heard
only by AudioSocket, which is an opportunity too). Delays count from the start of the
opportunity; inputs not yet made when it ends carry over to the next activity. An empty script
means silence.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from sim.voice import VoiceError, load_wav

DEFAULT_DELAY = 1.0
DEFAULT_GAP = 0.4
_DIGITS = re.compile(r"^[0-9*#A-Da-d]{1,64}$")
ANSWER_MODES = ("answer", "busy", "noanswer", "congestion", "hangup")


class PartyError(ValueError):
    """A party description is invalid."""


@dataclass
class PartyInput:
    """A key press (``digit``), speech (``audio``: 8 kHz 16-bit mono PCM) or a hangup (neither)
    ``delay`` sim seconds from now."""

    delay: float
    digit: str | None
    audio: bytes | None = None

    def later(self, elapsed: float) -> PartyInput:
        return PartyInput(max(0.0, self.delay - elapsed), self.digit, self.audio)


def _number(value: Any, what: str, default: float | None = None) -> float:
    if value is None:
        if default is None:
            raise PartyError(f"{what} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise PartyError(f"{what} must be a non-negative number")
    return float(value)


def _optional_number(value: Any, what: str) -> float | None:
    return None if value is None else _number(value, what)


def parse_step(step: Any) -> list[PartyInput]:
    if not isinstance(step, dict):
        raise PartyError(f"script step must be an object, got {step!r}")
    if step.get("silent"):
        return []
    if step.get("hangup"):
        return [PartyInput(_number(step.get("delay"), "hangup delay", 0.0), None)]
    if "say" in step:
        path = step["say"]
        if not isinstance(path, str) or not path or "\x00" in path:
            raise PartyError(f"say needs the path of a WAV file: {step!r}")
        try:
            audio = load_wav(path)
        except VoiceError as exc:
            raise PartyError(str(exc)) from None
        return [PartyInput(_number(step.get("delay"), "say delay", DEFAULT_DELAY), None, audio)]
    press = step.get("press")
    if not isinstance(press, str) or not _DIGITS.match(press):
        raise PartyError(f"step needs press (DTMF digits), say, silent or hangup: {step!r}")
    delay = _number(step.get("delay"), "press delay", DEFAULT_DELAY)
    gap = _number(step.get("gap"), "press gap", DEFAULT_GAP)
    return [PartyInput(delay + i * gap, d.upper()) for i, d in enumerate(press)]


def parse_script(script: Any) -> list[list[PartyInput]]:
    if script is None:
        return []
    if not isinstance(script, list):
        raise PartyError("script must be a list of steps")
    return [parse_step(step) for step in script]


@dataclass
class Party:
    """Common behaviour: script consumption and what was heard and pressed."""

    number: str
    script: list[list[PartyInput]] = field(default_factory=list)
    hangup_after: float | None = None
    heard: list[list[Any]] = field(default_factory=list)
    pressed: list[list[Any]] = field(default_factory=list)
    pending: list[PartyInput] = field(default_factory=list)
    steps_used: int = 0

    def arm(self, opportunity: bool) -> list[PartyInput]:
        """Inputs for an activity that starts now; takes the next step at an opportunity."""
        if opportunity and not self.pending and self.steps_used < len(self.script):
            self.pending = list(self.script[self.steps_used])
            self.steps_used += 1
        items, self.pending = self.pending, []
        return items

    def disarm(self, remaining: list[PartyInput]) -> None:
        self.pending = remaining


@dataclass
class CallerParty(Party):
    """An elder (or anyone) calling in from the PSTN."""

    name: str = ""
    to: str = "12349"
    context: str = "from-pstn"
    language: str = "en"
    channel: str = ""
    variables: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> CallerParty:
        if not isinstance(data, dict):
            raise PartyError("caller must be an object")
        number = data.get("number", "")
        if not isinstance(number, str) or len(number) > 64 or any(c in number for c in "\r\n"):
            raise PartyError("caller.number must be a string of at most 64 characters")
        variables = data.get("variables") or {}
        if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
        ):
            raise PartyError("caller.variables must map names to strings")
        fields = {}
        for key, default in (("name", ""), ("to", "12349"), ("context", "from-pstn"),
                             ("language", "en"), ("channel", "")):
            value = data.get(key, default)
            if value is None:
                value = default
            if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
                raise PartyError(f"caller.{key} must be a single-line string")
            fields[key] = value
        return cls(
            number=number,
            script=parse_script(data.get("script")),
            hangup_after=_optional_number(data.get("hangup_after"), "hangup_after"),
            variables=variables,
            **fields,
        )


@dataclass
class PhoneConfig:
    """How a dialled number behaves; with ``mix``, each call picks one behaviour by weight."""

    answer: str = "answer"
    ring_s: float = 3.0
    script: Any = None
    hangup_after: float | None = 30.0
    mix: list[tuple[float, PhoneConfig]] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Any) -> PhoneConfig:
        if not isinstance(data, dict):
            raise PartyError("phone must be an object")
        if "mix" in data:
            return cls(mix=_parse_mix(data["mix"]))
        answer = data.get("answer", "answer")
        if answer not in ANSWER_MODES:
            raise PartyError(f"phone answer must be one of {', '.join(ANSWER_MODES)}")
        parse_script(data.get("script"))
        return cls(
            answer=answer,
            ring_s=_number(data.get("ring_s"), "ring_s", 3.0),
            script=data.get("script"),
            hangup_after=_optional_number(data.get("hangup_after", 30.0), "hangup_after"),
        )

    def pick(self, rng: random.Random) -> PhoneConfig:
        """This behaviour, or one of the mix drawn by weight."""
        if not self.mix:
            return self
        weights = [weight for weight, _ in self.mix]
        return rng.choices([config for _, config in self.mix], weights)[0]


def _parse_mix(mix: Any) -> list[tuple[float, PhoneConfig]]:
    """``[{"weight": 70, "answer": "answer", "script": [...]}, {"weight": 10, ...}]``."""
    if not isinstance(mix, list) or not mix:
        raise PartyError("mix must be a non-empty list of behaviours with weights")
    parsed = []
    for item in mix:
        if not isinstance(item, dict) or "mix" in item:
            raise PartyError("each mix entry must be a behaviour object (no nested mix)")
        weight = _number(item.get("weight"), "mix weight")
        parsed.append((weight, PhoneConfig.from_json(
            {k: v for k, v in item.items() if k != "weight"})))
    if sum(weight for weight, _ in parsed) <= 0:
        raise PartyError("mix weights must not all be zero")
    return parsed


@dataclass
class PhoneParty(Party):
    """A dialled phone (vendor, family member, operator position)."""

    config: PhoneConfig = field(default_factory=PhoneConfig)


class PhoneBook:
    """Phone behaviours by number (or ``number@context`` for Local channels)."""

    def __init__(self, seed: int = 12349) -> None:
        self.phones: dict[str, PhoneConfig] = {}
        self.default = PhoneConfig()
        self.rng = random.Random(seed)

    def update(self, data: Any, seed: int | None = None) -> int:
        if not isinstance(data, dict):
            raise PartyError("phones must be an object mapping numbers to behaviours")
        if seed is not None:
            self.rng.seed(seed)
        parsed = {str(key): PhoneConfig.from_json(value) for key, value in data.items()}
        self.phones.update(parsed)
        return len(parsed)

    def party(self, *keys: str) -> PhoneParty:
        """A fresh party for the first key that is configured, else the default phone."""
        config = next((self.phones[k] for k in keys if k in self.phones), self.default)
        config = config.pick(self.rng)
        return PhoneParty(
            number=keys[0] if keys else "",
            script=parse_script(config.script),
            hangup_after=config.hangup_after,
            config=config,
        )
