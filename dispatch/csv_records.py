"""Reading a CSV file someone else wrote, row by row, without trusting it.

Nothing in a malformed file (bad UTF-8, NUL bytes, endless lines, wrong field counts,
unbalanced quotes) stops the reading or raises, and a malformed record costs only itself:
reading starts again at the line after its first. Each bad record is reported with its
line number and the reason. The registry import and the care-plan import both read
through :func:`csv_records`.
"""

from __future__ import annotations

import csv
import re
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from dispatch.db import make_sync_engine

MAX_LINE_CHARS = 65_536
MAX_RECORD_LINES = 20  # a quoted cell may hold line breaks, up to this many lines a record
MAX_ERRORS = 10_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RowError(ValueError):
    """A row that cannot be imported; the message says why."""
@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass
class CsvReport:
    """What reading a file found: its bad rows, the columns nobody reads, a fatal error."""

    path: str
    errors: list[BadRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    fatal: str | None = None

    @property
    def ok(self) -> bool:
        return self.fatal is None and not self.errors

    def problems(self) -> list[str]:
        """The report's lines about the file itself (fatal, ignored, bad rows)."""
        lines = []
        if self.fatal:
            lines.append(f"  import stopped: {self.fatal}")
        if self.ignored_columns:
            lines.append(f"  ignored columns: {', '.join(self.ignored_columns)}")
        lines += [f"  line {e.line}: {e.reason}" for e in self.errors[:50]]
        if len(self.errors) > 50:
            lines.append(f"  ... and {len(self.errors) - 50} more")
        return lines


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str
    cut: bool  # longer than MAX_LINE_CHARS: only its start is kept


def _bounded_lines(handle: TextIO) -> Iterator[_Line]:
    """Physical lines of a text file, each cut at MAX_LINE_CHARS."""
    number = 0
    while True:
        line = handle.readline(MAX_LINE_CHARS)
        if not line:
            return
        number += 1
        cut = len(line) >= MAX_LINE_CHARS and not line.endswith("\n")
        if cut:
            while True:  # drain the rest of this physical line
                rest = handle.readline(MAX_LINE_CHARS)
                if not rest or rest.endswith("\n"):
                    break
            line = line + "\n"
        yield _Line(number, line, cut)


class _RecordTooLong(Exception):
    """The record being read broke a bound; the message says which."""


class _RecordLines:
    """The csv reader's line source, bounding each record: a record may not take a line
    longer than MAX_LINE_CHARS, more than MAX_RECORD_LINES lines or more characters than
    MAX_LINE_CHARS in all. After a malformed record, :meth:`resync` makes reading start
    again at the line after its first, so an unbalanced quote costs one row, not the rest.
    """

    def __init__(self, lines: Iterator[_Line]) -> None:
        self._source = lines
        self._replay: deque[_Line] = deque()
        self.taken: list[_Line] = []  # the lines of the current record
        self._chars = 0

    def __iter__(self) -> _RecordLines:
        return self

    def __next__(self) -> str:
        if len(self.taken) >= MAX_RECORD_LINES:
            raise _RecordTooLong(f"unbalanced quote: the record is not closed within "
                                 f"{MAX_RECORD_LINES} lines")
        line = self._replay.popleft() if self._replay else next(self._source)
        self.taken.append(line)
        self._chars += len(line.text)
        if line.cut:
            raise _RecordTooLong(f"line longer than {MAX_LINE_CHARS} characters"
                                 if len(self.taken) == 1 else
                                 f"record longer than {MAX_LINE_CHARS} characters")
        if self._chars > MAX_LINE_CHARS:
            raise _RecordTooLong(f"record longer than {MAX_LINE_CHARS} characters")
        return line.text

    def start_record(self) -> None:
        self.taken = []
        self._chars = 0

    @property
    def first_line(self) -> int:
        return self.taken[0].number if self.taken else 0

    def resync(self) -> None:
        """Read the current record's lines again, from its second."""
        self._replay.extendleft(reversed(self.taken[1:]))
        self.start_record()


def _header(reader: Any, report: CsvReport, required: Sequence[str],
            optional: Sequence[str]) -> list[str] | None:
    try:
        header = next(reader, None)
    except csv.Error as exc:
        report.fatal = f"unreadable header: {exc}"
        return None
    if not header:
        report.fatal = "the file is empty: a header row is required"
        return None
    columns = [unicodedata.normalize("NFKC", c).strip().lower() for c in header]
    missing = [c for c in required if c not in columns]
    if missing:
        report.fatal = f"missing required column(s): {', '.join(missing)}"
        return None
    if len(set(columns)) != len(columns):
        report.fatal = "duplicate column names in the header"
        return None
    report.ignored_columns = [c for c in columns if c not in (*required, *optional)]
    return columns


def _rows(reader: Any, lines: _RecordLines, width: int,
          report: CsvReport) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of each non-blank record; malformed ones are reported.

    A record that is malformed, over a bound, or spans lines and has the wrong number of
    fields (a stray quote joined lines) is reported at its first line, and reading goes on
    from the line after that one.
    """
    while len(report.errors) < MAX_ERRORS:
        lines.start_record()
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, _RecordTooLong) as exc:
            reason = str(exc) if isinstance(exc, _RecordTooLong) else f"malformed CSV: {exc}"
            report.errors.append(BadRow(lines.first_line, reason))
            lines.resync()
            continue
        start = lines.first_line
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != width:
            report.errors.append(BadRow(start, f"expected {width} fields, found {len(row)}"))
            if len(lines.taken) > 1:
                lines.resync()
        else:
            yield start, row
    report.fatal = f"more than {MAX_ERRORS} bad rows: stopped"


def csv_records(path: str | Path, report: CsvReport, required: Sequence[str],
                optional: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, cells by column) of each well-formed record of the UTF-8 CSV at
    ``path``; everything wrong with the file or a record goes to ``report``. Columns are
    matched case-blind after NFKC; columns not in ``required`` or ``optional`` are left out
    (and named in the report)."""
    try:
        handle = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")  # noqa: SIM115
    except OSError as exc:
        report.fatal = f"cannot open: {exc.strerror or exc}"
        return
    with handle:
        lines = _RecordLines(_bounded_lines(handle))
        reader = csv.reader(lines, strict=True)
        columns = _header(reader, report, required, optional)
        if columns is None:
            return
        for line, row in _rows(reader, lines, len(columns), report):
            yield line, {c: v for c, v in zip(columns, row, strict=True)
                         if c not in report.ignored_columns}


# -- cells -------------------------------------------------------------------------------

def text_cell(value: str, column: str, limit: int, required: bool = False,
              fold_lines: bool = False) -> str | None:
    """A cell's text, stripped (None if empty); RowError if it is required and empty, too
    long, or holds control characters. ``fold_lines``: a spreadsheet's line breaks become
    spaces."""
    if fold_lines:
        value = " ".join(value.split())
    value = value.strip()
    if not value:
        if required:
            raise RowError(f"{column} is empty")
        return None
    if len(value) > limit:
        raise RowError(f"{column} longer than {limit} characters")
    if _CONTROL.search(value):
        raise RowError(f"{column} contains control characters")
    return value


def date_cell(value: str, column: str) -> date | None:
    """A YYYY-MM-DD cell (None if empty); RowError otherwise."""
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RowError(f"{column} {value[:20]!r} is not YYYY-MM-DD") from None


def import_csv(url: str, path: str | Path, report: CsvReport, required: Sequence[str],
               optional: Sequence[str], store: Callable[[Connection, int, dict[str, str]], None],
               *, commit_every: int = 200, pause_s: float = 0.0) -> None:
    """Each well-formed record of ``path`` through ``store(conn, line, cells)`` against the
    (migrated) database at ``url``, in a savepoint of its own: a RowError or a database
    refusal costs that row only (reported with its line), never half of it. COMMITs every
    ``commit_every`` rows, then steps aside ``pause_s`` on SQLite (one writer: a live
    engine's writes get in between the batches). A database that fails altogether is the
    report's ``fatal``."""
    engine = make_sync_engine(url)
    try:
        with engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")  # reads, then writes: lock first
            pending = 0
            for line, cells in csv_records(path, report, required, optional):
                try:
                    with conn.begin_nested():
                        store(conn, line, cells)
                except RowError as exc:
                    report.errors.append(BadRow(line, str(exc)))
                    continue
                except SQLAlchemyError as exc:
                    cause = getattr(exc, "orig", None) or exc
                    report.errors.append(BadRow(line, f"rejected by the database: "
                                                      f"{type(cause).__name__}"))
                    continue
                pending += 1
                if pending >= commit_every:
                    conn.commit()
                    if pause_s and conn.dialect.name == "sqlite":
                        time.sleep(pause_s)
                    pending = 0
            conn.commit()
    except (OSError, SQLAlchemyError) as exc:
        report.fatal = f"import stopped: {type(exc).__name__}: {exc}"[:500]
    finally:
        engine.dispose()
