#!/usr/bin/env python3
"""Emergency spool: record a 12349 call the engine may not know of, or nobody answered.

A classic AGI script (python3 + pyst2 only; it runs on the Asterisk box alone). The dialplan
runs it after the operator queue gave up, and when a call the engine did not take ends; it
writes one JSON record per call into the spool
directory given as the first argument (default ``$AST_SPOOL_DIR/hotline``, that is
``/var/spool/asterisk/hotline``), atomically: a temporary name in the same directory, fsync,
rename. The engine replays the records into emergency work orders when it returns
(``dispatch/spool_replay.py``).

Record (version 1): ``version``, ``uniqueid``, ``linkedid``, ``channel``, ``caller_number``,
``caller_name``, ``reason`` (HOTLINE_REASON), ``queuestatus`` (QUEUESTATUS), ``member``
(MEMBERINTERFACE: the operator who answered, empty if nobody did), ``spooled_at`` (ISO 8601,
UTC).

The call never suffers from this script: every error ends in a clean exit (status 0). On
success it sets the channel variable HOTLINE_SPOOLED=1, otherwise HOTLINE_SPOOLED=0 when the
channel still listens. pyst2 defects handled here: an unsolicited ``HANGUP`` line (pyst2
raises ValueError) is skipped by the reader, and after SIGHUP the commands that still work
on a dead channel (GET/SET VARIABLE) are not refused. Every read from Asterisk has a time and
a size bound; a watchdog ends the script if anything else stalls.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asterisk.agi import AGI, AGIError

RECORD_VERSION = 1
DEFAULT_SPOOL = "/var/spool/asterisk/hotline"
READ_TIMEOUT_S = 5.0
MAX_LINE = 8192
MAX_HANGUP_LINES = 8
MAX_FIELD = 256
WATCHDOG_S = 30
DIR_MODE = 0o750
FILE_MODE = 0o640
_UNSAFE = re.compile(r"[^0-9A-Za-z._-]")


class LinkError(Exception):
    """Asterisk's side of the AGI pipe is gone, silent, or sent garbage."""


class _Watchdog(BaseException):
    """The whole script ran out of time."""


class LineReader:
    """stdin for pyst2: UTF-8 lines with a per-read timeout and a length limit.

    Unsolicited ``HANGUP`` lines are dropped, so the reply of the command in flight is
    read in its place and pyst2 stays in step.
    """

    def __init__(self, fd: int = 0, timeout: float = READ_TIMEOUT_S,
                 max_line: int = MAX_LINE) -> None:
        self._fd, self._timeout, self._max_line = fd, timeout, max_line
        self._buffer = b""
        self._eof = False
        self.hangups = 0

    def readline(self, size: int = -1) -> str:
        """One line (with its newline), or ``''`` at end of input."""
        while True:
            text = self._raw_line().decode("utf-8", errors="replace")
            if text.strip() != "HANGUP":
                return text
            self.hangups += 1
            if self.hangups > MAX_HANGUP_LINES:
                raise LinkError("too many HANGUP lines")

    def _raw_line(self) -> bytes:
        deadline = time.monotonic() + self._timeout
        while b"\n" not in self._buffer:
            if len(self._buffer) > self._max_line:
                raise LinkError("line from Asterisk too long")
            if self._eof:
                line, self._buffer = self._buffer, b""
                return line
            remaining = deadline - time.monotonic()
            ready = select.select([self._fd], [], [], max(remaining, 0.0))[0]
            if not ready:
                raise LinkError("no reply from Asterisk in time")
            chunk = os.read(self._fd, 4096)
            self._eof = not chunk
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        if len(line) > self._max_line:
            raise LinkError("line from Asterisk too long")
        return line + b"\n"


class LineWriter:
    """stdout for pyst2: UTF-8 straight to the pipe, no buffer left behind at exit."""

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd

    def write(self, text: str) -> int:
        data = text.encode("utf-8", errors="replace")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        return len(text)

    def flush(self) -> None:
        """Writes are unbuffered."""


class _Discard:
    """pyst2's debug output (it holds caller IDs) goes nowhere."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        """Nothing to flush."""


class SpoolAGI(AGI):
    """pyst2's AGI that keeps going after SIGHUP and never lets a link error escape."""

    def __init__(self, reader: LineReader, writer: LineWriter) -> None:
        self.broken: str | None = None
        super().__init__(stdin=reader, stdout=writer, stderr=_Discard())

    def _get_agi_env(self) -> None:
        try:
            super()._get_agi_env()
        except (LinkError, OSError, ValueError) as exc:
            self.broken = f"environment: {exc}"

    def test_hangup(self) -> None:
        """GET/SET VARIABLE still work on a hung-up channel: never refuse them here."""

    def variable(self, name: str) -> str:
        """The variable's value, ``''`` if unset or unreadable."""
        if self.broken:
            return ""
        try:
            return str(self.get_variable(name))
        except AGIError:
            return ""
        except (LinkError, OSError, ValueError) as exc:
            self.broken = f"GET VARIABLE: {exc}"
            return ""

    def set(self, name: str, value: str) -> None:
        if self.broken:
            return
        try:
            self.set_variable(name, value)
        except AGIError:
            pass
        except (LinkError, OSError, ValueError) as exc:
            self.broken = f"SET VARIABLE: {exc}"


def _field(value: Any) -> str:
    text = str(value or "")[:MAX_FIELD]
    return "" if text == "unknown" else text


def spool_record(uniqueid: Any, linkedid: Any, channel: Any, caller_number: Any,
                 caller_name: Any, reason: Any, queuestatus: Any, now: datetime, *,
                 member: Any = "") -> dict[str, Any]:
    """A version-1 spool record; the engine writes the same for an order it could not store."""
    return {
        "version": RECORD_VERSION,
        "uniqueid": _field(uniqueid),
        "linkedid": _field(linkedid),
        "channel": _field(channel),
        "caller_number": _field(caller_number),
        "caller_name": _field(caller_name),
        "reason": _field(reason),
        "queuestatus": _field(queuestatus),
        "member": _field(member),
        "spooled_at": now.isoformat(),
    }


def build_record(agi: SpoolAGI, now: datetime) -> dict[str, Any]:
    """The spool record: caller ID and ids from the environment, the rest from the channel."""
    env = agi.env
    return spool_record(env.get("agi_uniqueid"), agi.variable("CHANNEL(linkedid)"),
                        env.get("agi_channel"), env.get("agi_callerid"),
                        env.get("agi_calleridname"), agi.variable("HOTLINE_REASON"),
                        agi.variable("QUEUESTATUS"), now,
                        member=agi.variable("MEMBERINTERFACE"))


def record_name(record: dict[str, Any], now: datetime) -> str:
    """Sortable by time, unique, and safe as a file name."""
    uid = _UNSAFE.sub("_", record["uniqueid"])[:64] or "nouid"
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uid}-{secrets.token_hex(3)}.json"


def write_atomically(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``folder/name``: temporary file, fsync, rename, fsync the folder."""
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    temp = folder / f".{name}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        final = folder / name
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return final


def spool_dir(argv: list[str]) -> Path:
    if len(argv) > 1 and argv[1].strip():
        return Path(argv[1].strip())
    base = os.environ.get("AST_SPOOL_DIR", "").strip()
    return Path(base) / "hotline" if base else Path(DEFAULT_SPOOL)


def _log(message: str) -> None:
    try:
        sys.stderr.write(f"emergency_spool: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _on_watchdog(_signum: int, _frame: Any) -> None:
    raise _Watchdog()


def run(argv: list[str]) -> None:
    """Spool this call; errors are logged (without personal data), never raised."""
    agi: SpoolAGI | None = None
    try:
        agi = SpoolAGI(LineReader(), LineWriter())
        now = datetime.now(UTC)
        record = build_record(agi, now)
        if not record["uniqueid"]:
            raise ValueError("no uniqueid in the AGI environment")
        data = json.dumps(record, ensure_ascii=False).encode("utf-8")
        path = write_atomically(spool_dir(argv), record_name(record, now), data)
        _log(f"spooled {path.name}")
        agi.set("HOTLINE_SPOOLED", "1")
    except _Watchdog:
        _log("gave up: watchdog")
    except Exception as exc:  # the call must go on whatever failed
        _log(f"not spooled: {type(exc).__name__}: {exc}")
        if agi is not None:
            agi.set("HOTLINE_SPOOLED", "0")
    if agi is not None and agi.broken:
        _log(f"AGI link: {agi.broken}")


def main() -> None:
    try:
        signal.signal(signal.SIGALRM, _on_watchdog)
        signal.alarm(WATCHDOG_S)
        run(sys.argv)
        signal.alarm(0)
    except BaseException as exc:  # nothing may fail the call
        _log(f"stopped: {type(exc).__name__}")
    os._exit(0)


if __name__ == "__main__":
    main()
