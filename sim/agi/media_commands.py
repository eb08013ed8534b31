"""AGI commands that play, listen or record: ANSWER, STREAM FILE, CONTROL STREAM FILE,
GET OPTION, GET DATA, WAIT FOR DIGIT, SAY *, RECORD FILE, SET MUSIC."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from sim.agi.commands import RESULT_FAILURE, RESULT_SHOWUSAGE, RESULT_SUCCESS, command
from sim.media import (
    SAMPLE_RATE,
    collect,
    digit_files,
    number_files,
    play,
    say_files,
    wait_digit,
)
from sim.recording import record_in, write_recording

if TYPE_CHECKING:
    from sim.agi.session import AgiSession

log = logging.getLogger(__name__)


def scan_int(text: str) -> int | None:
    """sscanf("%30d"): leading whitespace, optional sign, digits; None if no number."""
    m = re.match(r"\s*([-+]?\d{1,30})", text)
    return int(m.group(1)) if m else None


def atoi(text: str) -> int:
    value = scan_int(text)
    return value if value is not None else 0


def _ms(value: int) -> float | None:
    """Milliseconds to sim seconds; negative means wait for ever."""
    return None if value < 0 else value / 1000.0


@command("answer")
async def answer(s: AgiSession, argv: list[str]) -> int:
    s.chan.answer()
    s.send("200 result=0\n")
    return RESULT_SUCCESS


_MISSING = (-1, -1)


async def _stream(s: AgiSession, name: str, escape: str, offset: int) -> tuple[int, int] | None:
    """Play from ``offset`` samples: (res, endpos), _MISSING, or None when a new command
    arrived during playback (Asterisk then sends no reply)."""
    chan = s.chan
    total = chan.pbx.sounds.duration(name, chan.language)
    if total is None:
        log.warning("%s: prompt %r not found (language %s)", chan.name, name, chan.language)
        return _MISSING
    length = round(total * SAMPLE_RATE)
    start = min(offset, length)
    played = await play(chan, name, escape, s.interruptible(), start=start / SAMPLE_RATE)
    if played.interrupted:
        return None
    if played.hungup:
        return -1, start + played.samples
    if played.digit is not None:
        return ord(played.digit), start + played.samples
    return 0, length


@command("stream file")
async def stream_file(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 4 or len(argv) > 5:
        return RESULT_SHOWUSAGE
    offset = 0
    if len(argv) > 4:
        parsed = scan_int(argv[4])
        if parsed is None:
            return RESULT_SHOWUSAGE
        offset = max(0, parsed)
    outcome = await _stream(s, argv[2], argv[3], offset)
    if outcome is None:
        return RESULT_SUCCESS
    if outcome is _MISSING:
        s.send(f"200 result=-1 endpos={offset}\n")
        return RESULT_FAILURE
    res, endpos = outcome
    s.send(f"200 result={res} endpos={endpos}\n")
    s.chan.set_var("PLAYBACKSTATUS", "FAILED" if res else "SUCCESS")
    return RESULT_SUCCESS if res >= 0 else RESULT_FAILURE


@command("control stream file")
async def control_stream_file(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 5 or len(argv) > 10:
        return RESULT_SHOWUSAGE
    stop = argv[4]
    if len(argv) > 5 and scan_int(argv[5]) is None:
        return RESULT_SHOWUSAGE
    if len(argv) > 9 and scan_int(argv[9]) is None:
        return RESULT_SHOWUSAGE
    outcome = await _stream(s, argv[3], stop, 0)
    if outcome is None:
        return RESULT_SUCCESS
    res, endpos = outcome
    offset_ms = -1 if outcome is _MISSING else endpos * 1000 // SAMPLE_RATE
    if res > 0 and stop and chr(res) in stop:
        s.chan.set_var("CPLAYBACKSTATUS", "USERSTOPPED")
        s.chan.set_var("CPLAYBACKSTOPKEY", chr(res))
    else:
        s.chan.set_var("CPLAYBACKSTATUS", "ERROR" if res < 0 else "SUCCESS")
    s.chan.set_var("CPLAYBACKOFFSET", str(offset_ms))
    s.send(f"200 result={res} endpos={offset_ms}\n")
    return RESULT_SUCCESS if res >= 0 else RESULT_FAILURE


@command("get option")
async def get_option(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 4 or len(argv) > 5:
        return RESULT_SHOWUSAGE
    escape = argv[3]
    timeout_ms = atoi(argv[4]) if len(argv) == 5 else 5000
    outcome = await _stream(s, argv[2], escape, 0)
    if outcome is None:
        return RESULT_SUCCESS
    if outcome is _MISSING:
        s.send("200 result=-1 endpos=0\n")
        return RESULT_FAILURE
    res, endpos = outcome
    if res == 0:
        got = await wait_digit(s.chan, _ms(timeout_ms), s.interruptible())
        if got.interrupted:
            res = 1
        elif got.hungup:
            res = -1
        else:
            res = ord(got.digit) if got.digit and got.digit in escape else 0
    s.send(f"200 result={res} endpos={endpos}\n")
    return RESULT_SUCCESS if res >= 0 else RESULT_FAILURE


@command("get data")
async def get_data(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 3:
        return RESULT_SHOWUSAGE
    timeout = atoi(argv[3]) if len(argv) >= 4 else 0
    max_digits = atoi(argv[4]) if len(argv) >= 5 else 1024
    first, nxt = 6.0, 2.0
    if timeout > 0:
        first = nxt = timeout / 1000.0
    elif timeout < 0:
        first = nxt = None
    if max_digits == 0:
        s.send("200 result=-1\n")
        return RESULT_SUCCESS
    prompts = [argv[2]] if argv[2] else []
    got = await collect(s.chan, prompts, max_digits if max_digits > 0 else 1, first, nxt,
                        "#", s.interruptible())
    if got.status == "interrupted":
        return RESULT_SUCCESS
    if got.status == "timeout":
        s.send(f"200 result={got.digits} (timeout)\n")
    elif got.status in ("hangup", "failed"):
        s.send("200 result=-1\n")
    else:
        s.send(f"200 result={got.digits}\n")
    return RESULT_SUCCESS


@command("wait for digit")
async def wait_for_digit(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4:
        return RESULT_SHOWUSAGE
    timeout = scan_int(argv[3])
    if timeout is None:
        return RESULT_SHOWUSAGE
    if timeout == 0:
        s.send("200 result=0\n")
        return RESULT_SUCCESS
    got = await wait_digit(s.chan, _ms(timeout), s.interruptible())
    if got.interrupted:
        res = 1
    elif got.hungup:
        res = -1
    else:
        res = ord(got.digit) if got.digit else 0
    s.send(f"200 result={res}\n")
    return RESULT_SUCCESS if res >= 0 else RESULT_FAILURE


async def _say(s: AgiSession, files: list[str], escape: str) -> int:
    played = await say_files(s.chan, files, escape, s.interruptible())
    if played.interrupted:
        return RESULT_SUCCESS
    res = -1 if played.hungup else (ord(played.digit) if played.digit else 0)
    s.send(f"200 result={res}\n")
    return RESULT_SUCCESS if res >= 0 else RESULT_FAILURE


@command("say digits")
async def say_digits(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4 or scan_int(argv[2]) is None:
        return RESULT_SHOWUSAGE
    return await _say(s, digit_files(argv[2]), argv[3])


@command("say number")
async def say_number(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 4 or len(argv) > 5:
        return RESULT_SHOWUSAGE
    num = scan_int(argv[2])
    if num is None:
        return RESULT_SHOWUSAGE
    return await _say(s, number_files(num), argv[3])


@command("say alpha")
async def say_alpha(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 4 or len(argv) > 5:
        return RESULT_SHOWUSAGE
    if len(argv) > 4 and argv[4][:1] not in ("a", "A", "l", "L", "n", "N", "u", "U", ""):
        return RESULT_SHOWUSAGE
    return await _say(s, _alpha_files(argv[2], "letters/{}"), argv[3])


@command("say phonetic")
async def say_phonetic(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4:
        return RESULT_SHOWUSAGE
    return await _say(s, _alpha_files(argv[2], "phonetic/{}_p"), argv[3])


def _alpha_files(text: str, letter_fmt: str) -> list[str]:
    out = []
    for ch in text.lower():
        if ch.isdigit():
            out.append(f"digits/{ch}")
        elif "a" <= ch <= "z":
            out.append(letter_fmt.format(ch))
    return out


@command("say date")
async def say_date(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4 or scan_int(argv[2]) is None:
        return RESULT_SHOWUSAGE
    return await _say(s, [], argv[3])


@command("say time")
async def say_time(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4 or scan_int(argv[2]) is None:
        return RESULT_SHOWUSAGE
    return await _say(s, [], argv[3])


@command("say datetime")
async def say_datetime(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 4 or scan_int(argv[2]) is None:
        return RESULT_SHOWUSAGE
    return await _say(s, [], argv[3])


_FORMATS = {"wav", "wav16", "wav49", "gsm", "ulaw", "alaw", "sln", "sln16", "g722", "g729",
            "au", "raw", "pcm", "vox"}


@command("record file")
async def record_file(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 6:
        return RESULT_SHOWUSAGE
    timeout = scan_int(argv[5])
    if timeout is None:
        return RESULT_SHOWUSAGE
    silence = 0
    silencestr = next((a[a.index("s"):] for a in argv[6:9] if "s" in a), None)
    if silencestr and len(silencestr) > 2 and silencestr.startswith("s="):
        silence = max(0, atoi(silencestr[2:])) * 1000
    offset = 0
    beep = False
    if len(argv) > 6:
        parsed = scan_int(argv[6])
        if parsed is not None:
            offset = max(0, parsed)
        elif not argv[6].startswith("s="):
            beep = True
    if len(argv) > 7 and not argv[7].startswith("s="):
        beep = True
    chan = s.chan
    if beep:
        played = await play(chan, "beep")
        if not played.found or played.hungup:
            s.send(f"200 result=-1 (randomerror) endpos={offset}\n")
            return RESULT_SUCCESS
    fmt = argv[3].lower()
    if fmt not in _FORMATS:
        s.send("200 result=-1 (writefile)\n")
        return RESULT_FAILURE
    limit = None if timeout < 0 else timeout / 1000.0
    escape = argv[4]
    win = chan.window(opportunity=bool(escape))
    try:
        res, spoken = await record_in(win, limit, silence / 1000.0 if silence > 0 else None,
                                      (lambda d: d in escape) if escape else None)
    finally:
        win.close()
    samples = offset + round(res.elapsed * SAMPLE_RATE)
    if res.kind == "hangup":
        write_recording(chan.pbx, argv[2], fmt, samples, spoken)
        s.send(f"200 result=-1 (hangup) endpos={samples}\n")
        return RESULT_FAILURE
    if res.kind == "digit" and res.digit:
        samples = max(offset, samples - 200 * SAMPLE_RATE // 1000)
        write_recording(chan.pbx, argv[2], fmt, samples, spoken)
        s.send(f"200 result={ord(res.digit)} (dtmf) endpos={samples}\n")
        return RESULT_SUCCESS
    if silence > 0 and (timeout < 0 or res.elapsed * 1000 < timeout):
        samples = max(offset, samples - (silence - 1000) * SAMPLE_RATE // 1000)
    write_recording(chan.pbx, argv[2], fmt, samples, spoken)
    s.send(f"200 result=0 (timeout) endpos={samples}\n")
    return RESULT_SUCCESS


@command("set music")
async def set_music(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 3:
        return RESULT_SHOWUSAGE
    s.send("200 result=0\n")
    return RESULT_SUCCESS
