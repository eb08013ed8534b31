"""Extension patterns: ``_X.``, ``_NXXXXXX``, ``_[0-9]``, ``!`` and their match order."""

from __future__ import annotations

import re
from functools import lru_cache

_CLASS = {"X": "0-9", "Z": "1-9", "N": "2-9"}


class PatternError(ValueError):
    """An extension pattern cannot be compiled."""


def is_pattern(exten: str) -> bool:
    return exten.startswith("_")


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(full-match regex, can-match-more regex) for an ``_`` pattern."""
    body = pattern[1:]
    out: list[str] = []
    prefix_parts: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        upper = ch.upper()
        if upper in _CLASS:
            part = f"[{_CLASS[upper]}]"
        elif ch == "[":
            end = body.find("]", i + 1)
            if end < 0:
                raise PatternError(f"unterminated [ in pattern {pattern!r}")
            inner = body[i + 1 : end]
            if not inner:
                raise PatternError(f"empty [] in pattern {pattern!r}")
            part = "[" + "".join("\\" + c if c in "\\^]" else c for c in inner) + "]"
            i = end
        elif ch == ".":
            part = ".+"
        elif ch == "!":
            part = ".*"
        elif ch == "-":
            i += 1
            continue
        else:
            part = re.escape(ch)
        out.append(part)
        prefix_parts.append(part)
        i += 1
    full = re.compile("".join(out) + r"\Z", re.S)
    # "could match more": the digits typed so far are a prefix of some matching string
    more = "".join(f"(?:{p}" for p in prefix_parts) + ")?" * len(prefix_parts)
    return full, re.compile(more + r"\Z", re.S)


def matches(pattern: str, exten: str) -> bool:
    if not is_pattern(pattern):
        return pattern == exten
    return compile_pattern(pattern)[0].match(exten) is not None


def can_match_more(pattern: str, prefix: str) -> bool:
    """True if a longer string starting with ``prefix`` could match ``pattern``."""
    if not is_pattern(pattern):
        return pattern.startswith(prefix) and len(pattern) > len(prefix)
    full, more = compile_pattern(pattern)
    if pattern.endswith((".", "!")) and full.match(prefix):
        return True
    return more.match(prefix) is not None and full.match(prefix) is None


def _char_weight(ch: str, inner: str | None = None) -> int:
    if inner is not None:
        size = 0
        j = 0
        while j < len(inner):
            if j + 2 < len(inner) and inner[j + 1] == "-":
                size += max(1, ord(inner[j + 2]) - ord(inner[j]) + 1)
                j += 3
            else:
                size += 1
                j += 1
        return size
    upper = ch.upper()
    return {"X": 10, "Z": 9, "N": 8, ".": 1000, "!": 1001}.get(upper, 1)


def sort_key(pattern: str) -> tuple:
    """Asterisk tries the most specific pattern first: compare character classes by size."""
    if not is_pattern(pattern):
        return (0, ())
    weights: list[int] = []
    body = pattern[1:]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "[":
            end = body.find("]", i + 1)
            weights.append(_char_weight(ch, body[i + 1 : end]))
            i = end + 1
            continue
        if ch != "-":
            weights.append(_char_weight(ch))
        i += 1
    return (1, tuple(weights))
