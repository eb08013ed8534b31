"""Pendant base units (alarm boxes) as Asterisk's AlarmReceiver records them.

A real box dials the alarm line and sends Contact ID messages as DTMF; AlarmReceiver
acknowledges each and, after the call, writes them to a spool file. This module writes
that file exactly as AlarmReceiver does (name ``event-`` + 6 random characters, mode
0600, same layout and DTMF notation), or deliberately damaged for tests.
"""

from __future__ import annotations

import os
import random
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "AlarmBox",
    "AlarmBoxError",
    "BoxEvent",
    "Corruption",
    "message",
    "render",
    "write_spool_file",
]

# Digit values 1..15 (10 is written 0) as DTMF symbols and as the hex notation of manuals.
_DTMF = "_1234567890*#ABC"
_HEX = "_1234567890BCDEF"
_HEX_VALUE = {ch: value for value, ch in enumerate(_HEX) if value}
_NAME_CHARS = string.ascii_letters + string.digits
TIMESTAMP_FORMAT = "%a %b %d, %Y @ %H:%M:%S %Z"  # AlarmReceiver's default timestampformat


class AlarmBoxError(ValueError):
    """Invalid box settings or event fields."""


class Corruption(StrEnum):
    BAD_CHECKSUM = "bad_checksum"  # last event's checksum digit off by one
    TRUNCATED = "truncated"  # file cut in the middle of the last event line
    NO_EVENTS = "no_events"  # cut after the metadata: no [events] section
    NOT_UTF8 = "not_utf8"  # caller name bytes that are not UTF-8


@dataclass(frozen=True, slots=True)
class BoxEvent:
    code: str  # 3 hex-notation digits, e.g. "101"
    qualifier: int = 1  # 1 new, 3 restore, 6 still present
    zone: str = "001"
    partition: str = "01"


def _hex_values(text: str, what: str) -> list[int]:
    try:
        return [_HEX_VALUE[ch] for ch in text]
    except KeyError:
        raise AlarmBoxError(f"{what} {text!r}: use digits 0-9 and B-F") from None


def message(account: str, event: BoxEvent, message_type: str = "18") -> str:
    """One Contact ID message with its checksum, in DTMF notation."""
    for value, length, what in ((account, 4, "account"), (event.code, 3, "code"),
                                (event.zone, 3, "zone"), (event.partition, 2, "partition")):
        if len(value) != length:
            raise AlarmBoxError(f"{what} must have {length} digits, got {value!r}")
    if event.qualifier not in (1, 3, 6):
        raise AlarmBoxError("qualifier must be 1, 3 or 6")
    body = f"{account}{message_type}{event.qualifier}{event.code}{event.partition}{event.zone}"
    values = _hex_values(body, "message")
    values.append(15 - sum(values) % 15)
    return "".join(_DTMF[v] for v in values)


def _spoil_checksum(line: str) -> str:
    value = _DTMF.index(line[-1])
    return line[:-1] + _DTMF[value % 15 + 1]


def render(
    messages: Sequence[str],
    calling_from: str = "",
    caller_name: str = "",
    when: float | None = None,
    corrupt: Corruption | None = None,
) -> bytes:
    """The bytes of a spool file holding ``messages`` (grouped metadata, as by default)."""
    stamp = time.strftime(TIMESTAMP_FORMAT, time.localtime(time.time() if when is None else when))
    lines = list(messages)
    if corrupt is Corruption.BAD_CHECKSUM and lines:
        lines[-1] = _spoil_checksum(lines[-1])
    name = caller_name or "<unknown>"
    head = (f"\n\n[metadata]\n\nPROTOCOL=ADEMCO_CONTACT_ID\nCHECKSUM=yes\n"
            f"CALLINGFROM={calling_from or '<unknown>'}\nCALLERNAME=")
    tail = f"\nTIMESTAMP={stamp}\n\n"
    name_bytes = (b"\xb3\xc2\xd2\xbb" if corrupt is Corruption.NOT_UTF8
                  else name.encode("utf-8"))
    meta = head.encode() + name_bytes + tail.encode()
    if corrupt is Corruption.NO_EVENTS:
        return meta
    data = meta + b"[events]\n\n" + "".join(f"{line}\n" for line in lines).encode()
    if corrupt is Corruption.TRUNCATED:
        data = data[:-9]
    return data


def write_spool_file(spool_dir: Path, data: bytes) -> Path:
    """Create ``event-XXXXXX`` (mode 0600, never an existing name) holding ``data``."""
    for _ in range(100):
        suffix = "".join(random.choice(_NAME_CHARS) for _ in range(6))
        path = Path(spool_dir) / f"event-{suffix}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path
    raise AlarmBoxError(f"no free spool file name in {spool_dir}")


@dataclass(frozen=True, slots=True)
class AlarmBox:
    """One base unit: its Contact ID account and the line it calls from."""

    account: str
    line: str = ""
    caller_name: str = ""

    def report(
        self,
        spool_dir: Path,
        events: Sequence[BoxEvent],
        when: float | None = None,
        corrupt: Corruption | None = None,
    ) -> Path:
        """One alarm call: the spool file AlarmReceiver leaves after it."""
        if not events:
            raise AlarmBoxError("a report needs at least one event")
        if any(c in self.line + self.caller_name for c in "\r\n\x00"):
            raise AlarmBoxError("line and caller name must be single-line text")
        data = render([message(self.account, e) for e in events], self.line,
                      self.caller_name, when, corrupt)
        return write_spool_file(spool_dir, data)
