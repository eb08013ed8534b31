"""``${VAR}``, ``${VAR:offset:length}``, ``${FUNC(args)}`` and ``$[expr]`` substitution."""

from __future__ import annotations

import logging
from typing import Protocol

from sim.dialplan.args import split_top_level
from sim.dialplan.expr import evaluate

log = logging.getLogger(__name__)

MAX_DEPTH = 15
MAX_LENGTH = 65536


class Resolver(Protocol):
    def variable(self, name: str) -> str | None:
        """Value of a variable (builtin, channel, global), or None when unset."""

    def function(self, name: str, args: str) -> str | None:
        """Value of a dialplan function, or None when it fails or is unknown."""


def substitute(text: str, resolver: Resolver, depth: int = 0) -> str:
    """Expand every ``${...}`` and ``$[...]`` in ``text``, innermost first."""
    if "$" not in text:
        return text
    if depth > MAX_DEPTH:
        log.warning("variable substitution nested too deeply in %r", text[:80])
        return ""
    out: list[str] = []
    i = 0
    while i < len(text):
        start = text.find("$", i)
        if start < 0 or start + 1 >= len(text):
            out.append(text[i:])
            break
        opener = text[start + 1]
        if opener not in "{[":
            out.append(text[i : start + 1])
            i = start + 1
            continue
        out.append(text[i:start])
        end = _matching(text, start + 1)
        if end < 0:
            log.warning("missing '%s' in %r", "}" if opener == "{" else "]", text[:80])
            out.append(text[start:])
            break
        inner = substitute(text[start + 2 : end], resolver, depth + 1)
        if opener == "{":
            out.append(_lookup(inner, resolver))
        else:
            out.append(evaluate(inner))
        i = end + 1
        if sum(len(p) for p in out) > MAX_LENGTH:
            log.warning("substitution result too long; truncated")
            break
    return "".join(out)[:MAX_LENGTH]


def _matching(text: str, open_at: int) -> int:
    """Index of the bracket closing the one at ``open_at`` (``{`` or ``[``), counting nesting."""
    open_ch = text[open_at]
    close_ch = "}" if open_ch == "{" else "]"
    depth = 0
    for j in range(open_at, len(text)):
        ch = text[j]
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return j
    return -1


def split_name(expr: str) -> tuple[str, int | None, int | None]:
    """``NAME:offset:length`` -> parts; colons inside parentheses belong to the name."""
    name, rest = split_top_level(expr)
    if rest is None:
        return expr, None, None
    off_s, _, len_s = rest.partition(":")
    return name, _int(off_s), (_int(len_s) if len_s != "" else None)


def _int(text: str) -> int:
    text = text.strip()
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    num = ""
    for ch in digits:
        if not ch.isdigit():
            break
        num += ch
    return sign * int(num) if num else 0


def substring(value: str, offset: int | None, length: int | None) -> str:
    """Asterisk's ast_str_substring: negative offset counts from the end, negative length trims."""
    if offset is None and length is None:
        return value
    off = offset or 0
    if off < 0:
        off = max(0, len(value) + off)
    value = value[off:]
    if length is None:
        return value
    if length < 0:
        return value[: len(value) + length] if len(value) > -length else ""
    return value[:length]


def _lookup(expr: str, resolver: Resolver) -> str:
    name, offset, length = split_name(expr)
    if name.endswith(")") and "(" in name:
        fname, _, args = name.partition("(")
        value = resolver.function(fname.strip(), args[:-1])
    else:
        value = resolver.variable(name)
    return substring(value or "", offset, length)
