"""Originate with Async: login, queued reply and OriginateResponse as in outbound_*.ami.txt."""

from __future__ import annotations

import asyncio

import pytest

from tests.traces import TraceLine, read_trace

from .rawclient import RawAmi
from .replay import normalize, replay_on

TRACES = ["outbound_answered.ami.txt", "outbound_busy.ami.txt",
          "outbound_congestion.ami.txt", "outbound_noanswer.ami.txt"]


def _through_last_reply(trace: list[TraceLine]) -> list[TraceLine]:
    """The trace up to the end of the server's reply to the last client message."""
    last_client = max(i for i, line in enumerate(trace) if line.side == "C")
    end = next(i for i in range(last_client, len(trace))
               if trace[i].side == "S" and trace[i].text == "\r")
    return trace[: end + 1]


def _block(trace: list[TraceLine], event: str) -> list[str]:
    start = next(i for i, line in enumerate(trace) if line.text == f"Event: {event}\r")
    end = next(i for i in range(start, len(trace)) if trace[i].text == "\r")
    return [line.text.rstrip("\r") for line in trace[start:end]]


@pytest.mark.parametrize("name", TRACES)
async def test_originate_exchange_matches_trace(ami_port: int, name: str) -> None:
    trace = read_trace(name)
    reader, writer = await asyncio.open_connection("127.0.0.1", ami_port)
    client = RawAmi(reader, writer)
    try:
        # Banner, plain login, FullyBooted, SuccessfulAuth, Originate, "successfully queued".
        await replay_on(reader, writer, _through_last_reply(trace), secret="s3cret")
        got = await client.read_until(lambda m: m.get("Event") == "OriginateResponse")
    finally:
        client.close()
    expected = _block(trace, "OriginateResponse")
    assert [normalize(f"{k}: {v}") for k, v in got] == [normalize(x) for x in expected]
