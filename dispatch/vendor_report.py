"""The monthly vendor report (``hotline report vendors``): every vendor's figures for a
calendar month in local time, and the lowest-scoring vendors as candidates for removal
(末位淘汰) with their evidence. Vendors with too little evidence are listed apart and are
never in the bottom; removed vendors are listed but never candidates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import Vendor, VendorStatus
from dispatch.vendor_quality import QualityRules, VendorFigures, quality_score, vendor_figures

__all__ = [
    "VendorLine",
    "VendorReport",
    "format_vendor_report",
    "month_bounds",
    "parse_month",
    "previous_month",
    "vendor_report",
    "vendor_report_json",
]

_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
BOTTOM_SHARE = 0.10  # default bottom: this share of scored vendors, at least one


@dataclass(frozen=True)
class VendorLine:
    vendor_id: int
    name: str
    status: VendorStatus
    figures: VendorFigures
    score: float | None


@dataclass(frozen=True)
class VendorReport:
    month: str  # YYYY-MM
    timezone: str
    since: datetime  # UTC, the month's first local midnight
    until: datetime  # UTC, the next month's first local midnight, or now if earlier
    min_decided_offers: int
    vendors: list[VendorLine]  # every vendor, by id
    bottom: list[VendorLine]  # lowest score first
    insufficient: list[VendorLine]  # not removed, too little evidence for a score


def parse_month(text: str) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month); ValueError otherwise."""
    match = _MONTH.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise ValueError(f"month must be YYYY-MM, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def month_bounds(year: int, month: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The month's first local midnight and the next month's, both aware."""
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=tz), datetime(next_year, next_month, 1, tzinfo=tz)


def previous_month(now: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """The last complete calendar month at ``now`` in local time."""
    local = now.astimezone(tz)
    return (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)


async def vendor_report(session: AsyncSession, *, year: int, month: int, tz: ZoneInfo,
                        now: datetime, bottom: int | None = None,
                        rules: QualityRules | None = None) -> VendorReport:
    """Figures of month ``year-month`` (up to ``now`` if the month is not over).

    ``bottom``: how many scored vendors to name for removal; by default 10 % of the scored
    vendors, at least one (none if no vendor has a score).
    """
    rules = rules or QualityRules()
    if bottom is not None and bottom < 1:
        raise ValueError("bottom must be at least 1")
    since, until = month_bounds(year, month, tz)
    if since >= now:
        raise ValueError(f"{year:04d}-{month:02d} has not begun")
    since, until = since.astimezone(UTC), min(until, now).astimezone(UTC)
    figures = await vendor_figures(session, since=since, until=until)
    lines = []
    for vendor_id, name, status in await session.execute(
        select(Vendor.id, Vendor.name, Vendor.status).order_by(Vendor.id)
    ):
        mine = figures.get(vendor_id) or VendorFigures(vendor_id)
        lines.append(VendorLine(vendor_id, name, VendorStatus(status), mine,
                                quality_score(mine, rules)))
    current = [line for line in lines if line.status != VendorStatus.REMOVED]
    scored = [line for line in current if line.score is not None]
    count = bottom if bottom is not None else (
        max(1, int(len(scored) * BOTTOM_SHARE)) if scored else 0)
    worst_first = sorted(scored, key=lambda line: (line.score, -line.figures.complaints,
                                                   line.vendor_id))
    return VendorReport(
        month=f"{year:04d}-{month:02d}", timezone=str(tz.key), since=since, until=until,
        min_decided_offers=rules.min_decided_offers, vendors=lines,
        bottom=worst_first[:count],
        insufficient=[line for line in current if line.score is None],
    )


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _orders(numbers: list[str]) -> str:
    return f" (orders {', '.join(numbers)})" if numbers else ""


def _evidence(line: VendorLine) -> str:
    f = line.figures
    rating = f"{f.ratings} ratings, mean {f.rating_mean:.2f}" if f.ratings else "no ratings"
    return (f"{f.offers} offers ({f.calls} calls): {f.accepted} accepted, {f.declined} declined, "
            f"{f.unanswered} not answered, {f.not_counted} not counted "
            f"(acceptance {_percent(f.acceptance_rate)}); "
            f"{f.late} of {f.due_arrivals} arrivals late{_orders(f.late_orders)}; {rating}; "
            f"{f.complaints} complaints{_orders(f.complaint_orders)}")


def format_vendor_report(report: VendorReport) -> str:
    local = ZoneInfo(report.timezone)
    lines = [
        f"Vendor report {report.month} ({report.since.astimezone(local):%Y-%m-%d %H:%M} to "
        f"{report.until.astimezone(local):%Y-%m-%d %H:%M} {report.timezone})",
        f"a score needs at least {report.min_decided_offers} decided offers "
        "(accepted, declined or not answered)",
        "",
        f"{'id':>5} {'status':<9} {'score':>5} {'offers':>6} {'accept':>8} {'decl':>4} "
        f"{'noans':>5} {'on time':>8} {'late':>4} {'rating':>6} {'n':>3} {'compl':>5}  name",
    ]
    for line in report.vendors:
        f = line.figures
        score = "-" if line.score is None else f"{line.score:.1f}"
        mean = "-" if f.rating_mean is None else f"{f.rating_mean:.2f}"
        lines.append(
            f"{line.vendor_id:>5} {line.status.value:<9} {score:>5} {f.offers:>6} "
            f"{_percent(f.acceptance_rate):>8} {f.declined:>4} {f.unanswered:>5} "
            f"{_percent(f.on_time_rate):>8} {f.late:>4} {mean:>6} {f.ratings:>3} "
            f"{f.complaints:>5}  {line.name}")
    scored = sum(1 for line in report.vendors
                 if line.score is not None and line.status != VendorStatus.REMOVED)
    lines += ["", f"bottom {len(report.bottom)} of {scored} scored vendors, "
                  "candidates for removal (末位淘汰):"]
    lines += [f"  #{line.vendor_id} {line.name}, score {line.score:.1f}: {_evidence(line)}"
              for line in report.bottom] or ["  none"]
    lines += ["", f"too little evidence (treated as new, never in the bottom): "
                  f"{len(report.insufficient)}"]
    lines += [f"  #{line.vendor_id} {line.name}: {line.figures.decided} decided offers"
              for line in report.insufficient]
    return "\n".join(lines)


def _line_json(line: VendorLine) -> dict[str, Any]:
    f = line.figures
    return {
        "vendor_id": line.vendor_id, "name": line.name, "status": line.status.value,
        "score": line.score, "offers": f.offers, "calls": f.calls, "accepted": f.accepted,
        "declined": f.declined, "not_answered": f.unanswered, "not_counted": f.not_counted,
        "decided": f.decided, "acceptance_rate": f.acceptance_rate,
        "due_arrivals": f.due_arrivals, "on_time": f.on_time,
        "on_time_rate": f.on_time_rate, "late_orders": f.late_orders,
        "ratings": f.ratings, "rating_mean": f.rating_mean, "jobs": f.jobs,
        "complaints": f.complaints, "complaint_orders": f.complaint_orders,
    }


def vendor_report_json(report: VendorReport) -> dict[str, Any]:
    """The report as JSON-ready data; bottom and insufficient name vendor ids."""
    return {
        "month": report.month, "timezone": report.timezone,
        "since": report.since.isoformat(), "until": report.until.isoformat(),
        "min_decided_offers": report.min_decided_offers,
        "vendors": [_line_json(line) for line in report.vendors],
        "bottom": [line.vendor_id for line in report.bottom],
        "insufficient_evidence": [line.vendor_id for line in report.insufficient],
    }
