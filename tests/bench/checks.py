"""What every benchmark checks about its own run, in one place.

A figure means nothing if the run behind it lost work, so each benchmark, once its measured
run is over, counts what that run must have left behind: the orders and call records in the
database, the queue entries, the screen pops and events in Redis, the accepted attempts. It
also fails on any log record at ERROR or above: the benchmark's own process (engine included,
and asyncio's "Task exception was never retrieved") through a logging handler, the simulator
through its log file. A benchmark that fails a check has its figures printed marked INVALID
and ``python -m tests.bench`` exits non-zero.

Every run gets a new directory under ``var/bench/runs/`` (its database, embedded Redis and
simulator log), removed when the benchmark passes and kept for a look when it fails.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.db import make_async_engine
from dispatch.models import (
    Call,
    CallPurpose,
    OrderEvent,
    OutboundCall,
    OutboundState,
    QueueCall,
    ServiceType,
    WorkOrder,
)
from ivr.event_loop import use_everywhere

RUNS_DIR = Path(os.environ.get("HOTLINE_VAR_DIR", "var")) / "bench" / "runs"
SHOWN = 3  # examples quoted per failed check
# Stopping an engine once the driven calls are over: the flows still finishing their last
# writes (a call record after the hangup) get this long, as in a graceful stop in service.
DRAIN_S = 30.0
# The simulator's log lines: "<date> <time> sim LEVEL logger: message"; a traceback printed
# outside logging (a crashed child process) counts as an error too.
ERROR_LINE = re.compile(r"^\S+ \S+ \S+ (?:ERROR|CRITICAL) |^Traceback \(most recent call last\)")
T = TypeVar("T")


def format_figures(title: str, figures: dict[str, Any]) -> str:
    """One benchmark table as ``make bench`` prints it."""
    lines = [f"\n== {title}"]
    for key, value in figures.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        lines.append(f"   {key:<34} {shown}")
    return "\n".join(lines)


class ErrorRecords(logging.Handler):
    """Counts the log records at ERROR or above; keeps the first few, one line each."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < SHOWN:
            message = record.getMessage().splitlines()[0] if record.getMessage() else ""
            self.first.append(f"{record.levelname} {record.name}: {message}"[:300])


def error_lines(path: Path) -> list[str]:
    """The lines of a subprocess's log file that report an error (none if it is absent)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8", errors="replace") as lines:
        return [line.rstrip() for line in lines if ERROR_LINE.search(line)]


class Bench:
    """One benchmark's run: its figures (held back until its checks are in), the checks it
    made, and the ERROR records logged while it ran.

    Use as a context manager around the benchmark. On exit it collects garbage (so a task
    dropped with an unretrieved exception is logged while the handler listens), scans the
    simulator logs it was given, prints the figures with the verdict, and removes its run
    directories if every check passed. An exception inside counts as a failed check and is
    not propagated, so the other benchmarks still run.
    """

    def __init__(self, name: str, out: TextIO | None = None) -> None:
        self.name = name
        self.out = out or sys.stdout
        self.failures: list[str] = []
        self.verified: list[str] = []
        self._reports: list[tuple[str, dict[str, Any]]] = []
        self._errors = ErrorRecords()
        self._logs: list[Path] = []
        self._dirs: list[Path] = []

    @property
    def passed(self) -> bool:
        return not self.failures

    # -- what the benchmark does ------------------------------------------------------------

    def report(self, title: str, figures: dict[str, Any]) -> None:
        """A table of figures, printed when the benchmark ends (marked INVALID if it failed)."""
        self._reports.append((title, dict(figures)))

    def run_dir(self, label: str) -> Path:
        """A new, empty directory for one run: its database, Redis and logs."""
        RUNS_DIR.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{self.name}-{label}-", dir=RUNS_DIR)).resolve()
        self._dirs.append(path)
        return path

    def log_file(self, path: Path) -> Path:
        """A subprocess's log file, scanned for errors when the benchmark ends."""
        self._logs.append(path)
        return path

    def fail(self, what: str) -> None:
        self.failures.append(what)

    def expect(self, what: str, expected: int, found: int) -> bool:
        """``found`` must equal ``expected``."""
        if found == expected:
            self.verified.append(f"{what}: {found}")
            return True
        self.fail(f"{what}: expected {expected}, found {found}")
        return False

    def missing(self, what: str, expected: Iterable[T], found: Collection[T]) -> bool:
        """Every item of ``expected`` must be in ``found``."""
        wanted = list(expected)
        lost = [item for item in wanted if item not in found]
        if not lost:
            self.verified.append(f"{what}: all {len(wanted)}")
            return True
        self.fail(f"{what}: {len(lost)} of {len(wanted)} missing, e.g. {lost[:SHOWN]}")
        return False

    def once_each(self, what: str, counts: Counter[Any]) -> bool:
        """No item was recorded more than once."""
        twice = [item for item, n in counts.items() if n > 1]
        if twice:
            self.fail(f"{what}: {len(twice)} recorded more than once, e.g. {twice[:SHOWN]}")
        return not twice

    async def no_tasks_left(self, what: str) -> None:
        """After ``what`` stopped, no task but the caller's may still run in this loop. Any
        left is a failure; it is cancelled and awaited so the next run starts clean."""
        current = asyncio.current_task()
        left = [task for task in asyncio.all_tasks() if task is not current]
        if not left:
            self.verified.append(f"{what}: every task stopped")
            return
        names = sorted({task.get_coro().__qualname__ for task in left})  # type: ignore[union-attr]
        self.fail(f"{what}: {len(left)} tasks still running after it stopped: "
                  f"{', '.join(names[:SHOWN])}")
        for task in left:
            task.cancel()
        await asyncio.wait(left, timeout=10.0)

    # -- the verdict ----------------------------------------------------------------------

    def __enter__(self) -> Bench:
        logging.getLogger().addHandler(self._errors)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if isinstance(exc, Exception):
            traceback.print_exception(kind, exc, tb)
            self.fail(f"stopped by {type(exc).__name__}: {exc}")
        gc.collect()
        logging.getLogger().removeHandler(self._errors)
        self._count_errors()
        self._print()
        if self.passed and not os.environ.get("HOTLINE_BENCH_KEEP"):  # kept: to inspect
            for folder in self._dirs:
                shutil.rmtree(folder, ignore_errors=True)
        return isinstance(exc, Exception)

    def _count_errors(self) -> None:
        if self._errors.count:
            self.fail(f"{self._errors.count} log records at ERROR or above in the benchmark's "
                      f"process, first: {self._errors.first}")
        for path in self._logs:
            lines = error_lines(path)
            if lines:
                self.fail(f"{len(lines)} error lines in {path}, first: {lines[:SHOWN]}")
        if not self._errors.count and not any(error_lines(p) for p in self._logs):
            self.verified.append("no log record at ERROR or above")

    def _print(self) -> None:
        mark = "" if self.passed else "INVALID: "
        for title, figures in self._reports:
            print(format_figures(mark + title, figures), file=self.out)
        if self.passed:
            print(f"-- {self.name}: checks passed ({len(self.verified)}): "
                  + "; ".join(self.verified), file=self.out)
        else:
            print(f"-- {self.name}: INVALID, checks failed: " + "; ".join(self.failures),
                  file=self.out)
            kept = [str(d) for d in self._dirs if d.exists()]
            if kept:
                print(f"   run directories kept: {', '.join(kept)}", file=self.out)
        self.out.flush()


def standalone(name: str, body: Callable[[Bench], None]) -> None:
    """Run one benchmark from its own command line; exit 1 if it failed its checks."""
    use_everywhere()  # the loop the engine process runs on
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: "
                                                      "%(message)s")
    with Bench(name) as bench:
        body(bench)
    sys.exit(0 if bench.passed else 1)


# -- what a run left in its database ------------------------------------------------------


class Stored:
    """Read-only queries of what a run committed, through a database engine of its own
    (opened after the engine under test stopped: what it counts was made durable)."""

    CHUNK = 500  # ids per IN (...) list

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: AsyncEngine | None = None

    async def __aenter__(self) -> Stored:
        self._engine = make_async_engine(self.url, pool_size=2)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._engine is not None:
            await self._engine.dispose()

    def connect(self) -> Any:
        """A connection for a benchmark's own queries of the run."""
        assert self._engine is not None
        return self._engine.connect()

    async def _rows(self, build: Callable[[list[Any]], Select[Any]], keys: Iterable[Any]
                    ) -> list[Sequence[Any]]:
        assert self._engine is not None
        keys = list(keys)
        rows: list[Sequence[Any]] = []
        async with self._engine.connect() as conn:
            for at in range(0, len(keys), self.CHUNK):
                rows += (await conn.execute(build(keys[at:at + self.CHUNK]))).all()
        return rows

    async def orders_of_calls(self, uniqueids: Iterable[str],
                              service: ServiceType | None = None) -> Counter[str]:
        """Orders per call (by its uniqueid), of ``service`` if given."""
        def build(chunk: list[str]) -> Select[Any]:
            query = select(WorkOrder.call_uniqueid).where(WorkOrder.call_uniqueid.in_(chunk))
            return query if service is None else query.where(WorkOrder.service == service)
        return Counter(row[0] for row in await self._rows(build, uniqueids))

    async def call_records(self, uniqueids: Iterable[str], *, with_their_order: bool
                           ) -> set[str]:
        """Calls that have their call record; with ``with_their_order``, only those whose
        record points to the order that call created."""
        def build(chunk: list[str]) -> Select[Any]:
            query = select(Call.uniqueid).where(Call.uniqueid.in_(chunk))
            if with_their_order:
                query = query.join(WorkOrder, WorkOrder.id == Call.order_id).where(
                    WorkOrder.call_uniqueid == Call.uniqueid)
            return query
        return {row[0] for row in await self._rows(build, uniqueids)}

    async def queue_entries(self, uniqueids: Iterable[str]) -> set[str]:
        """Calls recorded as having joined an operator queue."""
        return {row[0] for row in await self._rows(
            lambda chunk: select(QueueCall.uniqueid).where(
                QueueCall.uniqueid.in_(chunk), QueueCall.joined_at.is_not(None)), uniqueids)}

    async def orders_with_event(self, order_ids: Iterable[int], kinds: Collection[str]
                                ) -> set[int]:
        """Orders whose timeline has an event of one of ``kinds``."""
        return {row[0] for row in await self._rows(
            lambda chunk: select(OrderEvent.order_id).distinct().where(
                OrderEvent.order_id.in_(chunk), OrderEvent.kind.in_(kinds)), order_ids)}

    async def emergency_orders_of_calls(self, uniqueids: Iterable[str]) -> dict[str, int]:
        """uniqueid -> id of the emergency order that call created."""
        return {row[0]: row[1] for row in await self._rows(
            lambda chunk: select(WorkOrder.call_uniqueid, WorkOrder.id).where(
                WorkOrder.call_uniqueid.in_(chunk),
                WorkOrder.service == ServiceType.EMERGENCY), uniqueids)}

    async def attempts(self, order_ids: Iterable[int], *, purpose: CallPurpose,
                       state: OutboundState, outcome: str | None = None) -> Counter[int]:
        """Outbound attempts per order in ``state`` (and with ``outcome``, if given)."""
        def build(chunk: list[int]) -> Select[Any]:
            query = select(OutboundCall.order_id).where(
                OutboundCall.order_id.in_(chunk), OutboundCall.purpose == purpose,
                OutboundCall.state == state)
            return query if outcome is None else query.where(OutboundCall.outcome == outcome)
        return Counter(row[0] for row in await self._rows(build, order_ids))

    async def count(self, model: Any, *where: Any) -> int:
        assert self._engine is not None
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(model)
                                           .where(*where))).scalar_one())


# -- what a run left in Redis --------------------------------------------------------------


STREAM_PAGE = 2000


async def stream_events(client: Any, stream_key: str, kind: str) -> list[tuple[float, dict]]:
    """(wall time of the entry, payload) of every ``kind`` event in the live event stream."""
    out = []
    start: bytes | str = "-"
    while True:  # in pages: one reply of a whole disaster's stream outlasts the socket timeout
        page = await client.xrange(stream_key, min=start, count=STREAM_PAGE)
        for entry_id, fields in page:
            if fields[b"type"] == kind.encode():
                out.append((int(entry_id.split(b"-")[0]) / 1000, json.loads(fields[b"data"])))
        if len(page) < STREAM_PAGE:
            return out
        start = b"(" + page[-1][0]
