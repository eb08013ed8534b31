"""Asterisk ``$[...]`` expressions (main/ast_expr2.y semantics).

Values are strings, numeric strings or numbers. Comparisons are numeric only when neither side
is a (non-numeric) string; quoted operands keep their quotes (``"a" = "a"`` is true, ``"1" = 1``
is false), exactly as Asterisk compares them. Operators, lowest precedence first: ``? ::``,
``|``, ``&``, comparisons, ``+ -``, ``* / %``, unary ``! -``, ``: =~ ~~``. A syntax error yields
an empty string and a warning, as in Asterisk.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

INT_MAX = 2147483647


class ExprError(ValueError):
    """The expression does not parse."""


@dataclass
class Val:
    kind: str  # "str" | "numstr" | "num"
    s: str = ""
    n: float = 0.0

    @classmethod
    def num(cls, value: float) -> Val:
        return cls("num", n=value)

    @classmethod
    def make_str(cls, text: str) -> Val:
        isint = bool(text) and (text[0].isdigit() or text[0] in "-.")
        if isint and all(c.isdigit() or c == "." for c in text):
            return cls("numstr", s=text)
        return cls("str", s=text)

    def to_number(self) -> bool:
        if self.kind == "num":
            return True
        if self.kind == "str":
            return False
        try:
            self.n = float(self.s)
        except ValueError:
            return False
        self.kind = "num"
        return True

    def to_string(self) -> None:
        if self.kind == "num":
            self.s = fmt_number(self.n)
            self.kind = "str"

    def is_string(self) -> bool:
        return self.kind == "str"

    def zero_or_null(self) -> bool:
        if self.kind == "num":
            return self.n == 0
        return self.s == "" or (self.to_number() and self.n == 0)

    def strip_quotes(self) -> None:
        if self.kind != "num" and len(self.s) >= 1 and self.s[0] == '"' and self.s[-1] == '"':
            self.s = self.s.replace('"', "")

    def render(self) -> str:
        return fmt_number(self.n) if self.kind == "num" else self.s


def fmt_number(value: float) -> str:
    if math.isfinite(value) and value == int(value) and abs(value) < 1e18:
        return str(int(value))
    return format(value, ".15g")


_OPS = [
    "||", "&&", "==", "=~", "~~", ">=", "<=", "!=", "::",
    "|", "&", "=", ">", "<", "+", ",", "-", "*", "/", "%", "?", "!", ":", "(", ")",
]
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_WORD = re.compile(r"(?:[A-Za-z0-9.';\\_^#@\x80-\U0010ffff]|\$(?!\{))+")


def tokenize(text: str) -> list[tuple[str, Val | None]]:
    tokens: list[tuple[str, Val | None]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        if ch == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ExprError("unterminated string")
            tokens.append(("TOKEN", Val("str", s=text[i : end + 1])))
            i = end + 1
            continue
        num = _NUMBER.match(text, i)
        word = _WORD.match(text, i)
        if word and (not num or word.end() > num.end()):
            tokens.append(("TOKEN", Val("str", s=word.group())))
            i = word.end()
            continue
        if num:
            tokens.append(("TOKEN", Val("numstr", s=num.group())))
            i = num.end()
            continue
        for op in _OPS:
            if text.startswith(op, i):
                tokens.append((op, None))
                i += len(op)
                break
        else:
            raise ExprError(f"unexpected character {ch!r}")
    return tokens


_BINARY = {
    "|": 2, "||": 2, "&": 3, "&&": 3,
    "=": 4, "==": 4, ">": 4, "<": 4, ">=": 4, "<=": 4, "!=": 4,
    "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
    ":": 8, "=~": 8, "~~": 8,
}
_UNARY_PREC = 7


class _Parser:
    def __init__(self, tokens: list[tuple[str, Val | None]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, Val | None]:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def parse(self) -> Val:
        if not self.tokens:
            return Val("str", s="")
        value = self.expr(0)
        if self.pos != len(self.tokens):
            raise ExprError(f"unexpected {self.peek()!r}")
        return value

    def expr(self, min_prec: int) -> Val:
        left = self.unary()
        while True:
            op = self.peek()
            if op == "?" and min_prec <= 1:
                self.take()
                middle = self.expr(2)
                if self.peek() != "::":
                    raise ExprError("'?' without '::'")
                self.take()
                right = self.expr(2)
                left = _cond(left, middle, right)
                continue
            prec = _BINARY.get(op or "")
            if prec is None or prec < min_prec:
                return left
            self.take()
            right = self.expr(prec + 1)
            left = _binary(op or "", left, right)

    def unary(self) -> Val:
        op = self.peek()
        if op is None:
            raise ExprError("unexpected end of expression")
        if op in ("!", "-"):
            self.take()
            operand = self.expr(_UNARY_PREC)
            return _compl(operand) if op == "!" else _negate(operand)
        if op == "(":
            self.take()
            inner = self.expr(0)
            if self.peek() != ")":
                raise ExprError("missing ')'")
            self.take()
            return inner
        kind, val = self.take()
        if kind != "TOKEN" or val is None:
            raise ExprError(f"unexpected {kind!r}")
        if self.peek() == "(":
            raise ExprError(f"functions in expressions are not supported ({val.s})")
        return val


def _cond(a: Val, b: Val, c: Val) -> Val:
    if a.is_string():
        return b if a.s and a.s != '""' and a.s != "0" else c
    a.to_number()
    return b if a.n else c


def _compare(op: str, a: Val, b: Val) -> Val:
    if a.is_string() or b.is_string():
        a.to_string()
        b.to_string()
        x: object = a.s
        y: object = b.s
    else:
        a.to_number()
        b.to_number()
        x, y = a.n, b.n
    result = {
        "=": x == y, "==": x == y, "!=": x != y,
        ">": x > y, "<": x < y, ">=": x >= y, "<=": x <= y,  # type: ignore[operator]
    }[op]
    return Val.num(1.0 if result else 0.0)


def _arith(op: str, a: Val, b: Val) -> Val:
    if op == "+":
        if not a.to_number():
            log.warning("non-numeric argument")
            return b if b.to_number() else Val.num(0)
        if not b.to_number():
            return a
        return Val.num(a.n + b.n)
    if not a.to_number() or not b.to_number():
        log.warning("non-numeric argument")
        return Val.num(INT_MAX if op == "/" and a.kind == "num" else 0)
    if op == "-":
        return Val.num(a.n - b.n)
    if op == "*":
        return Val.num(a.n * b.n)
    if b.n == 0:
        log.warning("division by zero")
        return Val.num(INT_MAX) if op == "/" else b
    if op == "/":
        return Val.num(a.n / b.n)
    return Val.num(math.fmod(a.n, b.n))


def _regex(op: str, a: Val, b: Val) -> Val:
    for v in (a, b):
        v.to_string()
        v.strip_quotes()
    if op == "~~":
        return Val.make_str(a.s + b.s)
    try:
        rx = re.compile(b.s)
    except re.error as exc:
        log.warning("regcomp() error : %s", exc)
        return Val.make_str("")
    m = rx.match(a.s) if op == ":" else rx.search(a.s)
    if m:
        if rx.groups:
            return Val.make_str(m.group(1) or "")
        return Val.num(float(m.end() - m.start()))
    return Val.num(0.0) if rx.groups == 0 else Val.make_str("")


def _binary(op: str, a: Val, b: Val) -> Val:
    if op in ("|", "||"):
        return b if a.zero_or_null() else a
    if op in ("&", "&&"):
        return Val.num(0) if a.zero_or_null() or b.zero_or_null() else a
    if op in ("=", "==", "!=", ">", "<", ">=", "<="):
        return _compare(op, a, b)
    if op in ("+", "-", "*", "/", "%"):
        return _arith(op, a, b)
    return _regex(op, a, b)


def _compl(a: Val) -> Val:
    if a.kind == "num":
        truth = a.n != 0
    elif a.s in ("", "0"):
        truth = False
    else:
        m = re.match(r"\s*[-+]?\d+", a.s)
        truth = bool(int(m.group())) if m else False
    return Val.num(0.0 if truth else 1.0)


def _negate(a: Val) -> Val:
    if not a.to_number():
        log.warning("non-numeric argument")
        return Val.num(0)
    return Val.num(-a.n)


def evaluate(text: str) -> str:
    """Evaluate an already substituted expression; errors give ``""`` and a warning."""
    try:
        return _Parser(tokenize(text)).parse().render()
    except (ExprError, IndexError) as exc:
        log.warning("syntax error in expression $[%s]: %s", text, exc)
        return ""
