"""Import of care plans from a CSV (format: docs/care-plans-csv.md).

One row is one standing caring call of one elder, found by ``elder_ref``: its kind, its
local window (``09:00-10:00``), its days, a reminder's words, its dates and the elder's
quiet days. Re-importing a row with the same elder, kind and window start updates that
plan instead of adding one. Bad rows are reported with their line number and reason, and
nothing of a bad row is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy import Connection, select, update

from dispatch.care_plans import EVERY_DAY
from dispatch.csv_records import CsvReport, RowError, date_cell, import_csv, text_cell
from dispatch.db import insert_ignoring
from dispatch.models import CareKind, CarePlan, CareQuietDay, Elder

REQUIRED = ("elder_ref", "kind", "window")
OPTIONAL = ("days", "message", "starts_on", "ends_on", "quiet_days")
MESSAGE_MAX = 200
KINDS = {
    "check_in": CareKind.CHECK_IN, "checkin": CareKind.CHECK_IN, "签到": CareKind.CHECK_IN,
    "每日问候": CareKind.CHECK_IN, "companion": CareKind.COMPANION,
    "陪伴": CareKind.COMPANION, "精神慰藉": CareKind.COMPANION,
    "reminder": CareKind.REMINDER, "提醒": CareKind.REMINDER,
}  # fmt: skip
DAY_NAMES = {
    "mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6,
    "周一": 0, "周二": 1, "周三": 2, "周四": 3, "周五": 4, "周六": 5, "周日": 6, "周天": 6,
    "一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
}  # fmt: skip
DAY_SETS = {"": EVERY_DAY, "daily": EVERY_DAY, "每天": EVERY_DAY, "weekdays": 0b0011111,
            "工作日": 0b0011111}
_WINDOW = re.compile(r"([0-2]?[0-9]):([0-5][0-9])\s*-\s*([0-2]?[0-9]):([0-5][0-9])")
_SPLIT = re.compile(r"[;,，、；\s]+")
MAX_QUIET_DAYS = 366


@dataclass
class CarePlanReport(CsvReport):
    created: int = 0
    updated: int = 0
    quiet_days: int = 0

    def __str__(self) -> str:
        return "\n".join([f"{self.path}: {self.created} plans created, {self.updated} "
                          f"updated, {self.quiet_days} quiet days, {len(self.errors)} rows "
                          f"rejected", *self.problems()])


@dataclass
class PlanFields:
    """One standing caring call, validated (a CSV row's or a console form's)."""

    kind: CareKind
    window_start: time
    window_end: time
    weekdays: int
    message: str | None
    starts_on: date | None
    ends_on: date | None
    quiet_days: list[date] = field(default_factory=list)


def _clock(hours: str, minutes: str) -> time:
    if int(hours) > 23:
        raise RowError(f"window: {hours}:{minutes} is not a time of day")
    return time(int(hours), int(minutes))


def parse_window(value: str) -> tuple[time, time]:
    """``HH:MM-HH:MM`` as two times; RowError if malformed or empty."""
    match = _WINDOW.fullmatch(value.strip())
    if match is None:
        raise RowError(f"window {value.strip()[:20]!r} is not HH:MM-HH:MM")
    start, end = _clock(*match.group(1, 2)), _clock(*match.group(3, 4))
    if start == end:
        raise RowError("window: it must not open and close at the same time")
    return start, end


def parse_days(value: str) -> int:
    """A weekday set: ``daily``, ``weekdays``, or names (``mon,thu``, ``周一、周四``) as
    the bits of ``CarePlan.weekdays``."""
    text = value.strip().lower()
    if text in DAY_SETS:
        return DAY_SETS[text]
    bits = 0
    for name in _SPLIT.split(text):
        if not name:
            continue
        if name not in DAY_NAMES:
            raise RowError(f"days: {name[:10]!r} is not a day of the week")
        bits |= 1 << DAY_NAMES[name]
    return bits or EVERY_DAY


@dataclass
class PlanRow:
    """One validated CSV row: the elder's reference and the plan."""

    elder_ref: str
    plan: PlanFields


def parse_row(cells: dict[str, str]) -> PlanRow:
    """Validate one row; RowError with the reason."""
    elder_ref = text_cell(cells["elder_ref"], "elder_ref", 64, required=True)
    assert elder_ref is not None
    return PlanRow(elder_ref, parse_plan(cells))


def parse_plan(cells: dict[str, str]) -> PlanFields:
    """Validate a plan's cells (kind, window, and the optional ones); RowError with the
    reason."""
    kind_text = (cells["kind"] or "").strip().lower()
    if kind_text not in KINDS:
        raise RowError(f"kind {kind_text[:20]!r} is not check_in, companion or reminder")
    kind = KINDS[kind_text]
    start, end = parse_window(cells["window"])
    days = parse_days(cells.get("days", ""))
    if kind is CareKind.COMPANION and not (cells.get("days") or "").strip():
        raise RowError("days: a companionship call needs its days (e.g. mon)")
    message = text_cell(cells.get("message", ""), "message", MESSAGE_MAX, fold_lines=True)
    if kind is CareKind.REMINDER and message is None:
        raise RowError("message: a reminder needs the words to say")
    starts_on = date_cell(cells.get("starts_on", ""), "starts_on")
    ends_on = date_cell(cells.get("ends_on", ""), "ends_on")
    if starts_on and ends_on and ends_on < starts_on:
        raise RowError("ends_on is before starts_on")
    quiet = [date_cell(item, "quiet_days") for item in
             _SPLIT.split(cells.get("quiet_days", "").strip()) if item]
    if len(quiet) > MAX_QUIET_DAYS:
        raise RowError(f"quiet_days: more than {MAX_QUIET_DAYS}")
    return PlanFields(kind, start, end, days, message, starts_on, ends_on,
                      [day for day in quiet if day is not None])


def _store(conn: Connection, row: PlanRow, at: datetime) -> tuple[bool, int]:
    """Write one row's plan (and its quiet days); (created, quiet days added)."""
    elder_id = conn.scalar(select(Elder.id).where(Elder.external_ref == row.elder_ref))
    if elder_id is None:
        raise RowError(f"no elder with elder_ref {row.elder_ref!r}")
    return store_plan(conn, elder_id, row.plan, at)


def store_plan(conn: Connection, elder_id: int, row: PlanFields, at: datetime
               ) -> tuple[bool, int]:
    """Write the elder's plan: a new one, or the one of the same kind and window start
    updated (and started again if stopped); its quiet days added. (created, quiet days
    added). The caller commits."""
    values = {"window_end": row.window_end, "weekdays": row.weekdays, "message": row.message,
              "starts_on": row.starts_on, "ends_on": row.ends_on, "stopped_at": None}
    same = (CarePlan.elder_id == elder_id, CarePlan.kind == row.kind,
            CarePlan.window_start == row.window_start)
    plan_id = conn.scalar(select(CarePlan.id).where(*same))
    if plan_id is None:
        conn.execute(CarePlan.__table__.insert().values(
            elder_id=elder_id, kind=row.kind, window_start=row.window_start, created_at=at,
            **values))
    else:
        conn.execute(update(CarePlan).where(CarePlan.id == plan_id).values(**values))
    added = 0
    if row.quiet_days:
        result = conn.execute(
            insert_ignoring(CareQuietDay.__table__, conn.dialect, ("elder_id", "day"))
            .returning(CareQuietDay.__table__.c.id),
            [{"elder_id": elder_id, "day": day} for day in row.quiet_days])
        added = len(result.all())
    return plan_id is None, added


def import_care_plans(url: str, path: str | Path) -> CarePlanReport:
    """Import the care-plan CSV at ``path`` into the (migrated) database at ``url``."""
    report = CarePlanReport(str(path))
    at = datetime.now(UTC)

    def store(conn: Connection, _line: int, cells: dict[str, str]) -> None:
        created, quiet = _store(conn, parse_row(cells), at)
        report.created += created
        report.updated += not created
        report.quiet_days += quiet

    import_csv(url, path, report, REQUIRED, OPTIONAL, store)
    return report
