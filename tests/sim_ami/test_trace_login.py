"""The simulator answers the client lines of login.ami.txt exactly as Asterisk 22 did."""

from __future__ import annotations

import time

from tests.traces import read_trace

from .replay import connections, normalize, replay_connection

SECRET = "s3cret"


async def test_failed_plain_login_waits_answers_and_closes(ami_port: int) -> None:
    failed, _ = connections(read_trace("login.ami.txt"))
    started = time.monotonic()
    got = await replay_connection(ami_port, failed, SECRET)
    assert time.monotonic() - started >= 0.9  # Asterisk sleeps 1 s before refusing
    assert got[-1] == "<eof>"


async def test_md5_session_matches_the_trace(ami_port: int) -> None:
    _, session = connections(read_trace("login.ami.txt"))
    got = await replay_connection(ami_port, session, SECRET)
    expected = [line.text for line in session if line.side == "S"]
    assert [normalize(x) for x in got] == [normalize(x) for x in expected]


def test_normalize_only_blanks_variable_values() -> None:
    assert normalize("Timestamp: 1795346823.462355\r") == "Timestamp: <variable>"
    assert normalize("Message: Authentication accepted\r") == "Message: Authentication accepted\r"
    assert normalize("RemoteAddress: IPV4/TCP/127.0.0.1/49350\r") == (
        "RemoteAddress: IPV4/TCP/127.0.0.1/<port>\r")
