"""Encoding of AGI command lines: quoting as Asterisk's parser expects, no line injection."""

from __future__ import annotations

import functools
import re

_VERB = re.compile(r"[A-Za-z]+( [A-Za-z]+)*")
_FORBIDDEN = ("\r", "\n", "\x00")


def quote_argument(value: str) -> str:
    """Quote one argument so Asterisk reads it back as a single word."""
    if any(ch in value for ch in _FORBIDDEN):
        raise ValueError("AGI arguments may not contain CR, LF or NUL")
    if value and not any(ch in value for ch in ' \t"\\'):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def build_command(verb: str, *args: str | int) -> str:
    """Join a command verb (``"STREAM FILE"``) and its arguments into one AGI line, no newline."""
    if not _VERB.fullmatch(verb):
        raise ValueError(f"invalid AGI command verb: {verb!r}")
    return " ".join([verb, *(quote_argument(str(arg)) for arg in args)])


@functools.lru_cache(maxsize=4096, typed=True)
def command_line(verb: str, *args: str | int) -> bytes:
    """``build_command`` encoded with its newline, ready to send; the lines a call flow sends
    repeat (its prompts, its menus), so they are built once."""
    return build_command(verb, *args).encode("utf-8") + b"\n"
