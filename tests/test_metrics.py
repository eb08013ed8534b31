"""The engine's ``/metrics``, scraped over HTTP during a burst of calls through the
simulator: the counters match the calls placed, the Originates the simulator received, the
queue's answers, and the open emergencies in the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from dispatch.models import QueueCall, ServiceType, WorkOrder
from dispatch.phones import national
from tests.callstack import CallStack, open_stack, until

OPERATORS = [{"name": "op1", "answer_delay_s": 5.0, "talk_s": 5.0, "available": True},
             {"name": "op2", "answer_delay_s": 5.0, "talk_s": 5.0, "available": True}]
HANG_UP_AT_MENU = 3.0


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[CallStack]:
    async for stack in open_stack("embedded", tmp_path, elders=60, speed=20.0, ami=True,
                                  engine_overrides={"metrics": {"enabled": True, "port": 0,
                                                                "refresh_s": 0.1}}):
        yield stack


async def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (name, sorted labels) -> value, over a real socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:80]
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}


def flow_of(session: dict[str, Any]) -> str:
    """The FastAGI route of one of the simulator's AGI sessions (``agi://host/<route>``)."""
    return str(session["script"]).rsplit("/", 1)[-1]


def dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        out, body = out + rest[:length], rest[length + 2:]
    return out


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(value for (sample, keys), value in samples.items()
               if sample == name and set(labels.items()) <= set(keys))


async def test_metrics_count_a_burst_of_calls(stack: CallStack) -> None:
    assert stack.engine is not None and stack.engine.metrics is not None
    port = stack.engine.metrics.port
    before = await scrape(port)
    assert total(before, "hotline_ami_connected") == 1
    await stack.sim.request("operators", operators=OPERATORS)
    handsets = stack.numbers["handsets"][:3]
    menu_callers = stack.numbers["elders"][:4]
    strangers = stack.numbers["unknown"][:2]
    calls = [stack.call(national(n)) for n in handsets]
    calls += [stack.call(national(n), hangup_after=HANG_UP_AT_MENU) for n in menu_callers]
    calls += [stack.call(national(n), hangup_after=HANG_UP_AT_MENU) for n in strangers]
    results = await asyncio.gather(*calls)
    inbound = [s for r in results for s in r["agi"] if flow_of(s) == "inbound"]
    assert len(inbound) == len(calls)

    async def settled() -> dict[Any, float] | None:
        """The scrape once every Originate the simulator saw is counted with its outcome
        and the open-emergency gauge shows the database's figure."""
        now = await scrape(port)
        originated = len((await stack.sim.request("originated"))["originated"])
        counted = (total(now, "hotline_originates_total")
                   - total(before, "hotline_originates_total"))
        open_now = stack.rows(select(func.count()).select_from(WorkOrder).where(
            WorkOrder.service == ServiceType.EMERGENCY,
            WorkOrder.status.not_in(["completed", "cancelled"])))[0][0]
        return now if counted == originated and \
            total(now, "hotline_open_emergencies") == open_now else None

    after = await until(settled, "the metrics to count every Originate and emergency")
    assert total(after, "hotline_calls_total", flow="inbound", ended="served") - total(
        before, "hotline_calls_total", flow="inbound", ended="served") == len(calls)
    assert total(after, "hotline_calls_in_progress", flow="inbound") == 0
    commands = sum(len(s["commands"]) for s in inbound)
    assert total(after, "hotline_agi_command_seconds_count") - total(
        before, "hotline_agi_command_seconds_count") >= commands
    assert total(after, "hotline_open_emergencies") >= len(handsets)
    assert total(after, "hotline_oldest_open_emergency_seconds") > 0
    answered = stack.rows(select(func.count()).select_from(QueueCall).where(
        QueueCall.answered_at.is_not(None)))[0][0]
    assert answered > 0
    assert total(after, "hotline_queue_wait_seconds_count", outcome="answered") - total(
        before, "hotline_queue_wait_seconds_count", outcome="answered") == answered
    assert total(after, "hotline_storage_errors_total") == total(
        before, "hotline_storage_errors_total")
    assert total(after, "hotline_spool_backlog") == 0
