"""Pure logic: request framing, permission masks, Originate variables and caller ID."""

from __future__ import annotations

import pytest

from sim.ami.framing import BUFFER_BYTES, MAX_HEADERS, RequestReader
from sim.ami.perms import ALL, CLASSES, authority_to_str, privilege_mask, strings_to_mask
from sim.ami.variables import originate_variables


def test_crlf_and_bare_lf_lines_and_split_reads() -> None:
    reader = RequestReader()
    assert reader.feed(b"Action: Ping\r\nActionID: a") == []
    assert reader.feed(b"1\r") == []
    (first,) = reader.feed(b"\n\r\n")
    assert first.lines == ["Action: Ping", "ActionID: a1"]
    (second,) = reader.feed(b"Action: Ping\nActionID:\t  x2\n\n")
    assert second.get("actionid") == "x2" and second.get("Action") == "Ping"


def test_header_lookup_is_prefix_and_first_match() -> None:
    (request,) = RequestReader().feed(
        b"Action:Getvar\r\nVariable: A\r\nvariable: B\r\nVariableX: C\r\nnoise\r\n\r\n")
    assert request.get("Action") == "Getvar"
    assert request.get_all("Variable") == ["A", "B"]
    assert request.get("Missing") == ""


def test_nul_ends_the_line_and_invalid_utf8_is_replaced() -> None:
    (request,) = RequestReader().feed(b"Action: Ping\x00Action: Originate\r\nX: \xff\xfe\r\n\r\n")
    assert request.lines == ["Action: Ping", "X: \ufffd\ufffd"]


def test_line_of_1022_bytes_fits_and_1023_does_not() -> None:
    ok = b"X: " + b"a" * (BUFFER_BYTES - 2 - 3) + b"\r\n"
    (request,) = RequestReader().feed(b"Action: Ping\r\n" + ok + b"\r\n")
    assert request.error is None
    long = b"X: " + b"a" * (BUFFER_BYTES - 1 - 3) + b"\r\n"
    first, second = RequestReader().feed(b"Action: Ping\r\nActionID: t1\r\n" + long + b"\r\n")
    assert first.error == "Failed to parse message: line too long"
    assert first.get("ActionID") == "t1"
    # As in Asterisk, the kept CR and the LF end the message early; the final CR LF is
    # then a message of its own.
    assert second.lines == [] and second.error is None


def test_endless_garbage_keeps_memory_bounded() -> None:
    reader = RequestReader()
    for _ in range(200):
        assert reader.feed(bytes(range(1, 10)) * 1000) == []
        assert len(reader._buffer) < BUFFER_BYTES
    (request,) = reader.feed(b"\r\n\r\n")
    assert request.error == "Failed to parse message: line too long"
    assert reader.feed(b"Action: Ping\r\n\r\n")[0].error is None  # recovered


def test_too_many_lines() -> None:
    data = b"Action: Ping\r\n" + b"X: 1\r\n" * MAX_HEADERS + b"\r\n"
    (request,) = RequestReader().feed(data)
    assert request.error == "Too many lines in message or allocation failure"
    assert len(request.lines) == MAX_HEADERS


def test_blank_line_alone_is_an_empty_request() -> None:
    (request,) = RequestReader().feed(b"\r\n")
    assert request.lines == [] and request.error is None


@pytest.mark.parametrize(("text", "mask"), [
    ("", -1), ("on", None), ("yes", None), ("off", 0), ("no", 0), ("0", 0), ("2", 2),
    ("call", CLASSES["call"]), ("call,user", CLASSES["call"] | CLASSES["user"]),
    ("bogus", 0), ("sys,call", CLASSES["system"] | CLASSES["call"]),  # Asterisk's prefix quirk
])
def test_strings_to_mask(text: str, mask: int | None) -> None:
    result = strings_to_mask(text)
    if mask is None:
        assert result & ALL == ALL
    else:
        assert result == mask


def test_privilege_strings() -> None:
    assert privilege_mask("call,all") == CLASSES["call"]
    assert authority_to_str(CLASSES["call"]) == "call,all"
    assert authority_to_str(CLASSES["security"]) == "security,all"
    assert authority_to_str(0) == "<none>"


def test_originate_variables_follow_asterisk_argument_rules() -> None:
    values = ["ORDER_ID=78", "NOTE=a\\,b=c", " A=1,B=\"x,y\",=skip,novalue"]
    assert originate_variables(values) == [
        ("ORDER_ID", "78"), ("NOTE", "a,b=c"), ("A", "1"), ("B", "x,y")]
