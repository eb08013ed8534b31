"""``$[...]`` expressions and ``${...}`` substitution, as Asterisk evaluates them."""

from __future__ import annotations

import pytest

from sim.dialplan.args import split_args
from sim.dialplan.expr import evaluate
from sim.dialplan.vars import substitute
from sim.functions import checkcondition


@pytest.mark.parametrize(("expr", "value"), [
    ("1 + 2", "3"), ("1+2*3", "7"), ("(1+2)*3", "9"), ("7 / 2", "3.5"), ("7 % 3", "1"),
    ("-3 + 1", "-2"), ("2 = 2", "1"), ("2 == 3", "0"), ("10 > 9", "1"),
    ('"10" > "9"', "0"),            # quoted operands compare as strings
    ("abc = abc", "1"), ("abc != abd", "1"), ("b > a", "1"),
    ('"done" = "done"', "1"), ('"" = ""', "1"), ('"1" = 1', "0"),
    ("1 & 0", "0"), ("5 & 6", "5"), ("0 | 7", "7"), ("3 | 7", "3"), (" | x", ""),
    ("!0", "1"), ("!1", "0"), ("!abc", "1"),
    ("1 ? yes :: no", "yes"), ("0 ? yes :: no", "no"),
    ("13800138000 : 138", "3"), ('"13800138000" : "(1[38])"', "13"), ("abc =~ b", "1"),
    ("ab ~~ cd", "abcd"), ("1 = 1 & 2 = 2", "1"), ("", ""),
    ("1 +", ""), ("(1", ""), ("1 2", ""),     # syntax errors give an empty result
])
def test_expressions(expr: str, value: str) -> None:
    assert evaluate(expr) == value


class Vars:
    def __init__(self, **values: str) -> None:
        self.values = values

    def variable(self, name: str) -> str | None:
        return self.values.get(name)

    def function(self, name: str, args: str) -> str | None:
        return {"LEN": str(len(args)), "ECHO": args}.get(name)


@pytest.mark.parametrize(("text", "value"), [
    ("${A}", "hello"), ("x${A}y", "xhelloy"), ("${A:1}", "ello"), ("${A:-3}", "llo"),
    ("${A:1:2}", "el"), ("${A:0:-1}", "hell"), ("${A:10}", ""), ("${NOPE}", ""),
    ("${LEN(${A})}", "5"), ("${ECHO(a:b)}", "a:b"), ("${ECHO(abc):1:1}", "b"),
    ("$[${N} + 1]", "42"), ('$["${A}" = "hello"]', "1"), ("${${NAME}}", "hello"),
    ("$$", "$$"), ("cost $5", "cost $5"), ("${A", "${A"),
])
def test_substitution(text: str, value: str) -> None:
    assert substitute(text, Vars(A="hello", N="41", NAME="A")) == value


@pytest.mark.parametrize(("text", "args"), [
    ("a,b,c", ["a", "b", "c"]), ("", [""]), ('"a,b",c', ["a,b", "c"]),
    ("f(a,b),c", ["f(a,b)", "c"]),
    ("a\\,b,c", ["a,b", "c"]), ("x,,", ["x", "", ""]), ("[a,b],c", ["[a,b]", "c"]),
])
def test_application_arguments(text: str, args: list[str]) -> None:
    assert split_args(text) == args


@pytest.mark.parametrize(("cond", "truth"), [
    ("", False), ("0", False), ("1", True), ("  2", True), ("-1", True), ("abc", True),
    ("0abc", False),
])
def test_condition_truth(cond: str, truth: bool) -> None:
    assert checkcondition(cond) is truth
