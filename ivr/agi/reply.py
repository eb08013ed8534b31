"""Parsing of Asterisk's AGI reply lines (``200 result=N (data) endpos=N``)."""

from __future__ import annotations

import re
from typing import NamedTuple

from ivr.agi.errors import AgiProtocolError

_REPLY_200 = re.compile(
    r"^200 result=(?P<result>[0-9*#-]*)(?: \((?P<data>.*)\))?(?: endpos=(?P<endpos>-?\d+))?\s*$"
)


class AgiReply(NamedTuple):
    """One successful (200) reply (a named tuple: a call reads 16 of them, and a tuple is
    built in a third of a frozen dataclass's time)."""

    result: str
    data: str | None
    endpos: int | None
    raw: str

    @property
    def value(self) -> int | None:
        """The result as a number, or None when empty (GET DATA timing out with no digits)."""
        try:
            return int(self.result)
        except ValueError:
            return None

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"


def parse_200(line: str) -> AgiReply:
    """Parse a ``200`` line; ``result=`` may be empty (GET DATA that timed out with no digits)."""
    match = _REPLY_200.match(line)
    if match is None:
        raise AgiProtocolError(f"unparseable AGI reply: {line[:120]!r}")
    result, data, endpos = match.group("result", "data", "endpos")
    return AgiReply(result, data, int(endpos) if endpos is not None else None, line)
