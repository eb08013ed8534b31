"""AGI command lines are split and looked up exactly as res_agi.c does."""

from __future__ import annotations

import pytest

from sim.agi.commands import find_command, parse_args


@pytest.mark.parametrize(("line", "argv"), [
    ("ANSWER", ["ANSWER"]),
    ('STREAM FILE welcome "0123456789*#"', ["STREAM", "FILE", "welcome", "0123456789*#"]),
    ('STREAM FILE beep ""', ["STREAM", "FILE", "beep", ""]),
    ('SET VARIABLE X "after hangup"', ["SET", "VARIABLE", "X", "after hangup"]),
    ("SET VARIABLE X a\\ b", ["SET", "VARIABLE", "X", "a b"]),
    ('SET VARIABLE X \\"q\\"', ["SET", "VARIABLE", "X", '"q"']),
    ("GET\tDATA  menu", ["GET", "DATA", "menu"]),
    ('VERBOSE "say \\"hi\\"" 1', ["VERBOSE", 'say "hi"', "1"]),
    ('SET VARIABLE N "张兰"', ["SET", "VARIABLE", "N", "张兰"]),
    ("ANSWER\r", ["ANSWER\r"]),
    ("", []),
    ("   ", []),
])
def test_parse_args(line: str, argv: list[str]) -> None:
    assert parse_args(line) == argv


@pytest.mark.parametrize(("line", "name"), [
    ("answer", "answer"), ("ANSWER extra words", "answer"), ("get variable X", "get variable"),
    ("GET FULL VARIABLE ${X}", "get full variable"), ("Wait For Digit 100", "wait for digit"),
    ("ANSWER\r", None), ("GET", None), ("FOOBAR baz", None), ("", None), ("SET", None),
])
def test_find_command(line: str, name: str | None) -> None:
    cmd = find_command(parse_args(line))
    assert (cmd.name if cmd else None) == name
