"""Parsing of Asterisk's AGI reply lines (``200 result=N (data) endpos=N``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ivr.agi.errors import AgiProtocolError

_REPLY_200 = re.compile(
    r"^200 result=(?P<result>[0-9*#-]*)(?: \((?P<data>.*)\))?(?: endpos=(?P<endpos>-?\d+))?\s*$"
)


@dataclass(frozen=True, slots=True)
class AgiReply:
    """One successful (200) reply."""

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
    result_text = match.group("result")
    endpos = match.group("endpos")
    return AgiReply(
        result=result_text,
        data=match.group("data"),
        endpos=int(endpos) if endpos is not None else None,
        raw=line,
    )
