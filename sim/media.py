"""What a channel hears and keys in: prompts, digit waits and digit collection.

Every function opens one input window (see sim.inputs), so a party's script step covers the
whole operation (prompt and the wait after it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred

from sim.inputs import InputWindow

if TYPE_CHECKING:
    from sim.channel import Channel

log = logging.getLogger(__name__)

ANY_DIGIT = "0123456789*#ABCD"
SAMPLE_RATE = 8000


@dataclass
class PlayResult:
    found: bool
    digit: str | None = None
    elapsed: float = 0.0
    hungup: bool = False
    interrupted: bool = False  # by the AGI control socket

    @property
    def samples(self) -> int:
        return round(self.elapsed * SAMPLE_RATE)


def hear(chan: Channel, name: str) -> tuple[list[Any], float] | None:
    """``name`` starts playing on ``chan``: its entry in what the party heard ([t, name,
    interrupting digit]) and its length in seconds; None, with a warning, if no file exists."""
    total = chan.pbx.sounds.duration(name, chan.language)
    if total is None:
        log.warning("%s: prompt %r not found (language %s)", chan.name, name, chan.language)
        return None
    entry: list[Any] = [chan.pbx.clock.stamp(), name, None]
    if chan.party is not None:
        chan.party.heard.append(entry)
    return entry, total


async def play_in(
    win: InputWindow, name: str, stop: str = "", until: Deferred | None = None,
    start: float = 0.0,
) -> PlayResult:
    """Play ``name`` (from ``start`` seconds) inside an open window; a digit in ``stop`` ends
    it early."""
    chan = win.chan
    if chan.hungup:
        return PlayResult(found=False, hungup=True)
    started = hear(chan, name)
    if started is None:
        return PlayResult(found=False)
    entry, total = started
    duration = max(0.0, total - start)
    result = await win.wait(duration, stop=(lambda d: d in stop) if stop else None, until=until)
    if result.kind == "digit":
        entry[2] = result.digit
    return PlayResult(
        found=True,
        digit=result.digit if result.kind == "digit" else None,
        elapsed=result.elapsed if result.kind != "done" else duration,
        hungup=result.kind == "hangup",
        interrupted=result.kind == "until",
    )


async def play(
    chan: Channel, name: str, stop: str = "", until: Deferred | None = None, start: float = 0.0
) -> PlayResult:
    """A prompt on its own; it is an input opportunity only when digits can stop it."""
    if chan.hungup:
        return PlayResult(found=False, hungup=True)
    if chan.pbx.sounds.duration(name, chan.language) is None:
        log.warning("%s: prompt %r not found (language %s)", chan.name, name, chan.language)
        return PlayResult(found=False)
    win = chan.window(opportunity=bool(stop))
    try:
        return await play_in(win, name, stop, until, start)
    finally:
        win.close()


@dataclass
class DigitResult:
    digit: str | None  # None: timeout
    hungup: bool = False
    interrupted: bool = False


async def digit_in(
    win: InputWindow, timeout: float | None, until: Deferred | None = None
) -> DigitResult:
    result = await win.wait(timeout, stop=lambda d: True, until=until)
    if result.kind == "digit":
        return DigitResult(result.digit)
    return DigitResult(None, hungup=result.kind == "hangup", interrupted=result.kind == "until")


async def wait_digit(
    chan: Channel, timeout: float | None, until: Deferred | None = None
) -> DigitResult:
    win = chan.window(opportunity=True)
    try:
        return await digit_in(win, timeout, until)
    finally:
        win.close()


@dataclass
class Collected:
    digits: str
    status: str  # "complete" | "timeout" | "empty" | "hangup" | "failed" | "interrupted"


async def collect(
    chan: Channel,
    prompts: list[str],
    max_digits: int,
    first_timeout: float | None,
    next_timeout: float | None,
    enders: str = "#",
    until: Deferred | None = None,
) -> Collected:
    """ast_app_getdata + ast_readstring: prompts interrupted by any key, then key collection.

    A missing prompt fails the whole operation, as ast_streamfile does in Asterisk.
    """
    win = chan.window(opportunity=True)
    try:
        return await _collect_in(win, prompts, max_digits, first_timeout, next_timeout,
                                 enders, until)
    finally:
        win.close()


async def _collect_in(
    win: InputWindow,
    prompts: list[str],
    max_digits: int,
    first_timeout: float | None,
    next_timeout: float | None,
    enders: str,
    until: Deferred | None,
) -> Collected:
    chan = win.chan
    if chan.hungup:
        return Collected("", "hangup")
    if max_digits <= 0:
        return Collected("", "failed")
    first: str | None = None
    for name in prompts:
        played = await play_in(win, name, ANY_DIGIT, until)
        if played.hungup:
            return Collected("", "hangup")
        if played.interrupted:
            return Collected("", "interrupted")
        if not played.found:
            return Collected("", "failed")
        if played.digit is not None:
            first = played.digit
            break
    digits = ""
    timeout = first_timeout
    while True:
        if first is not None:
            d, first = first, None
        else:
            got = await digit_in(win, timeout, until)
            if got.hungup:
                return Collected("", "hangup")
            if got.interrupted:
                return Collected(digits, "interrupted")
            if got.digit is None:
                return Collected(digits, "timeout")
            d = got.digit
        if d in enders and not digits:
            return Collected("", "empty")
        if d not in enders:
            digits += d
        if d in enders or len(digits) >= max_digits:
            return Collected(digits, "complete")
        timeout = next_timeout


def digit_files(digits: str) -> list[str]:
    """Prompt files Asterisk plays for a digit string (say.c)."""
    names = {"*": "digits/star", "#": "digits/pound", "-": "letters/dash"}
    out = []
    for ch in digits:
        if ch.isdigit():
            out.append(f"digits/{ch}")
        elif ch in names:
            out.append(names[ch])
    return out


def number_files(num: int) -> list[str]:
    """English number reading (digits/N, digits/hundred, digits/thousand, digits/million)."""
    if num < 0:
        return ["digits/minus", *number_files(-num)]
    if num == 0:
        return ["digits/0"]
    out: list[str] = []
    for size, word in ((1_000_000, "digits/million"), (1000, "digits/thousand")):
        if num >= size:
            out += [*number_files(num // size), word]
            num %= size
    if num >= 100:
        out += [f"digits/{num // 100}", "digits/hundred"]
        num %= 100
    if num >= 20:
        out.append(f"digits/{num - num % 10}")
        num %= 10
    if num:
        out.append(f"digits/{num}")
    return out


async def say_files(
    chan: Channel, files: list[str], escape: str, until: Deferred | None = None
) -> PlayResult:
    """Play a sequence (SAY DIGITS/NUMBER); missing files are skipped with a warning."""
    win = chan.window(opportunity=bool(escape))
    total = 0.0
    try:
        for name in files:
            played = await play_in(win, name, escape, until)
            total += played.elapsed
            if played.hungup or played.interrupted or played.digit is not None:
                played.elapsed = total
                return played
        return PlayResult(found=True, elapsed=total)
    finally:
        win.close()
