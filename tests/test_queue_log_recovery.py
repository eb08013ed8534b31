"""Asterisk's queue log makes up for the queue events an AMI outage hid.

Wire-level: the engine serves a handset emergency over FastAGI while its AMI link is cut, so
it never hears the caller join the queue or an operator answer; the simulator, as app_queue
does, writes both to its queue log. When the link is back the engine reads the log from a
little before the cut and records the caller's wait: joined, answered, by whom. Without the
log the wait would have no record at all. The parsing of the log's lines is checked on its
own, bad lines included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from dispatch.models import QueueCall
from dispatch.phones import national
from ivr.queue_log_recovery import QueueLogLine, parse_line, wait_fields
from tests.callstack import CallStack, open_stack, until


async def test_a_wait_the_ami_outage_hid_is_read_back_from_the_queue_log(tmp_path: Path
                                                                          ) -> None:
    queue_log = tmp_path / "queue_log"
    async for stack in open_stack("embedded", tmp_path, elders=60, ami=True, ami_proxy=True,
                                  sim_args=("--queue-log", str(queue_log)),
                                  engine_overrides={"ami": {"queue_log": str(queue_log)}}):
        await _a_call_during_a_cut(stack, queue_log)


async def _a_call_during_a_cut(stack: CallStack, queue_log: Path) -> None:
    assert stack.engine is not None and stack.ami_proxy is not None
    recovery = stack.engine.queue_log
    assert recovery is not None
    first = stack.engine.ami_clients[0]
    await until(lambda: first.connected and recovery._samples, "the log's place known")
    await stack.ami_proxy.cut()
    await until(lambda: not first.connected, "the engine to see the link down")
    result = await stack.call(national(stack.numbers["handsets"][4]))
    uniqueid = result["uniqueid"]
    assert result["queue"]["answered_at"] is not None, result
    assert stack.rows(select(QueueCall.joined_at).where(
        QueueCall.uniqueid == uniqueid, QueueCall.joined_at.is_not(None))) == []
    written = queue_log.read_text(encoding="utf-8")
    assert f"|{uniqueid}|operators|NONE|ENTERQUEUE|" in written
    assert f"|{uniqueid}|operators|{result['queue']['operator']}|CONNECT|" in written
    stack.ami_proxy.restore()
    rows = await stack.poll(
        select(QueueCall.queue, QueueCall.operator, QueueCall.outcome)
        .where(QueueCall.uniqueid == uniqueid, QueueCall.joined_at.is_not(None),
               QueueCall.answered_at.is_not(None)), bool)
    assert [tuple(row) for row in rows] == [
        ("operators", result["queue"]["operator"], "answered")]
    assert recovery.recovered >= 2


def test_queue_log_lines_are_read_as_asterisk_writes_them() -> None:
    at = datetime(2026, 12, 5, 1, 2, 3, tzinfo=UTC)
    stamp = int(at.timestamp())
    line = parse_line(f"{stamp}|1733390000.42|operators|NONE|ENTERQUEUE||13800000000|1\n")
    assert line == QueueLogLine(at, "1733390000.42", "operators", "NONE", "ENTERQUEUE")
    assert wait_fields(line) == {"joined_at": at, "queue": "operators"}
    connect = parse_line(f"{stamp}|1733390000.42|operators|op1|CONNECT|3|1733390001.7|2")
    assert connect is not None
    assert wait_fields(connect) == {"answered_at": at, "outcome": "answered",
                                    "operator": "op1"}
    abandon = parse_line(f"{stamp}|1733390000.42|operators|NONE|ABANDON|1|1|30")
    assert abandon is not None and wait_fields(abandon) == {"abandoned_at": at,
                                                            "outcome": "abandoned"}
    other = parse_line(f"{stamp}|NONE|operators|PJSIP/op1|ADDMEMBER|")
    assert other is None  # not a caller's wait
    for bad in ("", "garbage", "x|1.1|q|NONE|ENTERQUEUE", f"{stamp}|1.1|q",
                f"{stamp}|{'9' * 200}|q|NONE|ENTERQUEUE", "99999999999999999999|1.1|q|N|E"):
        assert parse_line(bad) is None, bad
    exit_line = parse_line(f"{stamp}|1.1|q|NONE|EXITWITHTIMEOUT|1|1|600")
    assert exit_line is not None and wait_fields(exit_line) is None
