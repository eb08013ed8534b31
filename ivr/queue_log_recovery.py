"""The queue entries an AMI outage hid, read back from Asterisk's queue log.

The engine records each caller's wait from the queue's AMI events (``ivr/queue_tracker.py``).
While its AMI link is down those events are lost: Asterisk does not replay them. app_queue
also writes every caller's wait to its queue log (``/var/log/asterisk/queue_log``, logger.conf
``queue_log = yes``, the default), one line per event: ``time|callid|queue|agent|event|
data...``. When the first box's link comes back, the engine reads the lines appended since a
little before it was lost and records what they say with the same idempotent write as the
events (``dispatch.queue_calls.note_queue_event``: the first value of a field stays):
ENTERQUEUE (the caller joined), CONNECT (answered, by which member) and ABANDON (the caller
hung up waiting). The log's place is sampled every ``SAMPLE_S`` while the link is up, so the
read starts up to ``SAMPLES`` samples before the link was lost: the events of the moments
before the loss was noticed are covered too. Reading lines already recorded changes
nothing. The file must be readable by the engine (``[ami] queue_log``; empty: off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dispatch.queue_calls import note_queue_event

log = logging.getLogger(__name__)

SAMPLE_S = 5.0
SAMPLES = 12  # the read starts up to a minute before the last sample
MAX_READ_BYTES = 64 * 1024 * 1024  # of a log that was rotated, or an outage of days
MAX_FIELD = 80


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    at: datetime
    uniqueid: str
    queue: str
    agent: str
    event: str


def parse_line(text: str) -> QueueLogLine | None:
    """One queue log line, or None for one that is not an event of a caller's wait."""
    parts = text.rstrip("\r\n").split("|")
    if len(parts) < 5:
        return None
    stamp, uniqueid, queue, agent, event = parts[:5]
    if not stamp.isdigit() or not uniqueid or uniqueid in ("NONE", "REALTIME"):
        return None
    if any(len(field) > MAX_FIELD for field in (uniqueid, queue, agent, event)):
        return None
    try:
        at = datetime.fromtimestamp(int(stamp), UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return QueueLogLine(at, uniqueid, queue, agent, event)


def wait_fields(line: QueueLogLine) -> dict[str, Any] | None:
    """What the line says of the caller's wait, as ``note_queue_event`` fields."""
    if line.event == "ENTERQUEUE":
        return {"joined_at": line.at, "queue": line.queue}
    if line.event == "CONNECT":
        return {"answered_at": line.at, "outcome": "answered", "operator": line.agent}
    if line.event == "ABANDON":
        return {"abandoned_at": line.at, "outcome": "abandoned"}
    return None


@dataclass(frozen=True, slots=True)
class LogPlace:
    """Where the file stood: its inode and size."""

    inode: int
    size: int


class QueueLogRecovery:
    """Samples the queue log's place while the link is up; after a reconnection, records the
    waits the log holds since the oldest sample."""

    def __init__(self, path: Path, write: Callable[[str, str, Any], None],
                 is_up: Callable[[], bool]) -> None:
        self.path = path
        self._write = write  # (uniqueid, what, work): a patient, idempotent write
        self._is_up = is_up
        self._samples: deque[LogPlace] = deque(maxlen=SAMPLES)
        self._unreadable = False
        self.recovered = 0  # lines recorded by the last recovery

    def _place(self) -> LogPlace | None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:  # no caller has queued yet: an empty log
            return LogPlace(0, 0)
        except OSError as exc:
            if not self._unreadable:
                log.warning("queue log %s not readable: %s", self.path, exc)
            self._unreadable = True
            return None
        self._unreadable = False
        return LogPlace(stat.st_ino, stat.st_size)

    def sample(self) -> None:
        if self._is_up():
            place = self._place()
            if place is not None:
                self._samples.append(place)

    async def sample_forever(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(SAMPLE_S)

    async def recover(self) -> int:
        """Record the waits written since the oldest sample (nothing before the first link
        was ever up); the number of lines recorded."""
        if not self._samples:
            await asyncio.to_thread(self.sample)  # the first connection: only a start
            return 0
        start = self._samples[0]
        lines = await asyncio.to_thread(self._read_since, start)
        recorded = 0
        for line in lines:
            fields = wait_fields(line)
            if fields is None:
                continue
            uniqueid = line.uniqueid

            async def work(session: Any, uniqueid: str = uniqueid,
                           fields: dict[str, Any] = fields) -> None:
                await note_queue_event(session, uniqueid, **fields)

            self._write(uniqueid, f"queue log line for {uniqueid}", work)
            recorded += 1
        self._samples.clear()
        await asyncio.to_thread(self.sample)
        self.recovered = recorded
        if recorded:
            log.warning("AMI link was down: %d queue events read back from %s", recorded,
                        self.path)
        return recorded

    def _read_since(self, start: LogPlace) -> list[QueueLogLine]:
        now = self._place()
        if now is None:
            return []
        offset = start.size if now.inode == start.inode and now.size >= start.size else 0
        offset = max(offset, now.size - MAX_READ_BYTES)
        return list(_lines(self.path, offset))


def _lines(path: Path, offset: int) -> Iterator[QueueLogLine]:
    with contextlib.suppress(OSError), path.open("rb") as file:
        if offset:  # to the start of the first whole line at or after the offset
            file.seek(offset - 1)
            file.readline()
        for raw in file:
            if not raw.endswith(b"\n"):
                return  # being written now: the next recovery, or the events, have it
            line = parse_line(raw.decode("utf-8", "replace"))
            if line is not None:
                yield line
