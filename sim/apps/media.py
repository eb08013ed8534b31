"""Prompt and keypad applications: Playback, Background, WaitExten, Read, SayDigits, SayNumber."""

from __future__ import annotations

import logging

from sim.apps.registry import AppContext, application
from sim.channel import State
from sim.dialplan.args import split_args
from sim.dialplan.patterns import can_match_more
from sim.media import ANY_DIGIT, collect, digit_files, number_files, play_in, say_files

log = logging.getLogger(__name__)

DIGIT_TIMEOUT = 5.0
RESPONSE_TIMEOUT = 10.0


@application("Playback")
async def playback(ctx: AppContext, data: str) -> int:
    args = split_args(data)
    files = [f for f in args[0].split("&") if f.strip()]
    options = (args[1] if len(args) > 1 else "").lower()
    chan = ctx.chan
    if not files:
        log.warning("Playback requires an argument (filename)")
        return -1
    if chan.state != State.UP:
        if "skip" in options:
            return 0
        if "noanswer" not in options:
            chan.answer()
    failed = False
    win = chan.window(opportunity=False)
    try:
        for name in files:
            played = await play_in(win, name.strip())
            if played.hungup:
                return -1
            failed = failed or not played.found
    finally:
        win.close()
    chan.set_var("PLAYBACKSTATUS", "FAILED" if failed else "SUCCESS")
    return 0


async def goto_collected(ctx: AppContext, first: str) -> int:
    """The PBX's digit collection after Background/WaitExten, then the jump (or ``i``)."""
    chan = ctx.chan
    exten = first
    candidates = ctx.pbx.dialplan.candidates(chan.context)
    win = chan.window(opportunity=False)
    try:
        while any(can_match_more(e.name, exten) for e in candidates):
            res = await win.wait(DIGIT_TIMEOUT, stop=lambda d: True)
            if res.kind == "hangup":
                return -1
            if res.kind != "digit" or res.digit is None:
                break
            exten += res.digit
    finally:
        win.close()
    if ctx.pbx.dialplan.find(chan.context, exten) is not None:
        ctx.runner.goto(None, exten, 1)
        return 0
    if ctx.pbx.dialplan.find(chan.context, "i") is not None:
        chan.set_var("INVALID_EXTEN", exten)
        ctx.runner.goto(None, "i", 1)
        return 0
    log.warning("%s: invalid extension %r in %s and no 'i'", chan.name, exten, chan.context)
    return -1


@application("Background")
async def background(ctx: AppContext, data: str) -> int:
    args = split_args(data)
    files = [f for f in args[0].split("&") if f.strip()]
    options = args[1] if len(args) > 1 else ""
    if len(args) > 3 and args[3].strip():
        ctx.chan.context = args[3].strip()
    chan = ctx.chan
    if chan.state != State.UP:
        if "s" in options:
            return 0
        if "n" not in options:
            chan.answer()
    win = chan.window(opportunity=True)
    digit = None
    try:
        for name in files:
            played = await play_in(win, name.strip(), ANY_DIGIT)
            if played.hungup:
                return -1
            if played.digit is not None:
                digit = played.digit
                break
    finally:
        win.close()
    if digit is None:
        return 0
    return await goto_collected(ctx, digit)


@application("WaitExten")
async def wait_exten(ctx: AppContext, data: str) -> int:
    args = split_args(data)
    try:
        seconds = float(args[0]) if args[0].strip() else RESPONSE_TIMEOUT
    except ValueError:
        seconds = RESPONSE_TIMEOUT
    chan = ctx.chan
    win = chan.window(opportunity=True)
    try:
        res = await win.wait(seconds if seconds > 0 else RESPONSE_TIMEOUT, stop=lambda d: True)
    finally:
        win.close()
    if res.kind == "hangup":
        return -1
    if res.kind == "digit" and res.digit is not None:
        return await goto_collected(ctx, res.digit)
    if ctx.pbx.dialplan.find(chan.context, "t") is not None:
        ctx.runner.goto(None, "t", 1)
        return 0
    log.warning("Timeout, but no rule 't' or 'e' in context '%s'", chan.context)
    return -1


@application("Read")
async def read(ctx: AppContext, data: str) -> int:
    args = split_args(data) + [""] * 6
    var, files_arg, max_arg, options, attempts_arg, timeout_arg = args[:6]
    chan = ctx.chan
    if not var.strip():
        log.warning("Read requires an argument (variable)")
        return 0
    max_digits = _int(max_arg, 0)
    max_digits = 255 if max_digits <= 0 or max_digits > 255 else max_digits
    attempts = max(1, _int(attempts_arg, 1))
    timeout = _float(timeout_arg, 0.0)
    timeout = timeout if timeout > 0 else RESPONSE_TIMEOUT
    files = [f.strip() for f in files_arg.split("&") if f.strip()]
    if chan.state != State.UP:
        if "s" in options:
            chan.set_var("READSTATUS", "SKIPPED")
            return 0
        if "n" not in options:
            chan.answer()
    status, digits = "TIMEOUT", ""
    for _ in range(attempts):
        got = await collect(chan, files, max_digits, timeout, timeout)
        digits = got.digits
        if got.status == "hangup":
            status = "HANGUP"
            break
        if got.status == "failed":
            status = "ERROR"
            break
        if digits or got.status in ("complete", "empty"):
            status = "OK"
            break
        status = "TIMEOUT"
    chan.set_var(var.strip(), digits)
    chan.set_var("READSTATUS", status)
    return -1 if status == "HANGUP" else 0


@application("SayDigits")
async def say_digits(ctx: AppContext, data: str) -> int:
    played = await say_files(ctx.chan, digit_files(split_args(data)[0]), "")
    return -1 if played.hungup else 0


@application("SayNumber")
async def say_number(ctx: AppContext, data: str) -> int:
    text = split_args(data)[0].strip()
    try:
        num = int(text)
    except ValueError:
        log.warning("SayNumber: first argument must be a number, not %r", text)
        return 0
    played = await say_files(ctx.chan, number_files(num), "")
    return -1 if played.hungup else 0


def _int(text: str, default: int) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return default


def _float(text: str, default: float) -> float:
    try:
        return float(text.strip())
    except ValueError:
        return default
