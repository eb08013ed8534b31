"""Checks on outgoing AMI headers: nothing may break the framing of an action.

A CR or LF inside a value ends the header early and lets the rest be read as new
headers or a whole new action (a bare LF is enough); Asterisk cuts a line at a
NUL. Asterisk also discards any line over 1024 bytes and any message over 128
lines. All of that is refused here with a ValueError, before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MAX_LINE_BYTES = 1022  # 1024-byte input buffer in Asterisk, minus the CR LF
MAX_HEADERS = 128

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\([A-Za-z0-9_-]*\))?")
# Characters Asterisk's argument splitter treats specially in a Variable header.
_SPECIAL = re.compile(r"([\\,\"()\[\]])")

HeaderValue = str | int | Iterable[str | int]


def check_header(name: str, value: str) -> None:
    """Raise ValueError unless ``name: value`` is one safe AMI header line."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"invalid AMI header name {name!r}")
    if not isinstance(value, str):
        raise ValueError(f"AMI header {name} must be text, got {type(value).__name__}")
    bad = _FORBIDDEN.search(value)
    if bad:
        raise ValueError(
            f"AMI header {name} contains {bad.group()!r} (CR, LF and NUL are refused: "
            "they would inject headers or actions)"
        )
    if len(f"{name}: {value}".encode()) > MAX_LINE_BYTES:
        raise ValueError(f"AMI header {name} exceeds the {MAX_LINE_BYTES} bytes Asterisk accepts")


def header_lines(fields: Mapping[str, HeaderValue]) -> list[tuple[str, str]]:
    """Flatten ``fields`` (a value may be a list: one line each) and check every line."""
    lines: list[tuple[str, str]] = []
    for name, value in fields.items():
        values = [value] if isinstance(value, str | int) else list(value)
        for item in values:
            text = str(item) if isinstance(item, int) else item
            check_header(name, text)
            lines.append((name, text))
    if len(lines) > MAX_HEADERS:
        raise ValueError(f"an AMI action may have at most {MAX_HEADERS} headers, got {len(lines)}")
    return lines


def variable_header(name: str, value: str) -> str:
    """One ``Variable:`` value, escaped so Asterisk reads back exactly ``value``.

    Asterisk splits each Variable header on commas, honouring quotes, brackets
    and backslash escapes; every special character is therefore escaped.
    """
    if not _VARIABLE_NAME.fullmatch(name):
        raise ValueError(f"invalid channel variable name {name!r}")
    escaped = _SPECIAL.sub(r"\\\1", value)
    return f"{name}={escaped}"
