"""Pure checks on outgoing headers and Originate variable escaping."""

from __future__ import annotations

import pytest

from ivr.ami.headers import MAX_HEADERS, MAX_LINE_BYTES, header_lines, variable_header
from sim.ami.variables import originate_variables


def test_lists_become_repeated_lines_and_ints_text() -> None:
    assert header_lines({"Action": "Originate", "Variable": ["A=1", "B=2"], "Priority": 1}) == [
        ("Action", "Originate"), ("Variable", "A=1"), ("Variable", "B=2"), ("Priority", "1")]


def test_limits_of_asterisk_input_buffer_and_header_count() -> None:
    header_lines({"X": "a" * (MAX_LINE_BYTES - 3)})
    with pytest.raises(ValueError, match="exceeds"):
        header_lines({"X": "a" * (MAX_LINE_BYTES - 2)})
    with pytest.raises(ValueError, match="exceeds"):
        header_lines({"X": "张" * 400})  # counted in bytes, not characters
    with pytest.raises(ValueError, match="at most"):
        header_lines({"Variable": [f"V{i}=1" for i in range(MAX_HEADERS)], "Action": "X"})


@pytest.mark.parametrize("value", ["a,b", 'say "hi"', "x\\y", "f(1,2)", "[a,b]", "=,=", "张,三"])
def test_variable_values_survive_asterisk_argument_splitting(value: str) -> None:
    header = variable_header("NOTE", value)
    assert originate_variables([header]) == [("NOTE", value)]


@pytest.mark.parametrize("name", ["", "A B", "A=B", "A,B", "1ABC", "A\nB"])
def test_bad_variable_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        variable_header(name, "1")
