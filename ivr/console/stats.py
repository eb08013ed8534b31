"""Statistics pages, for supervisors and above: the figures of ``hotline report stats``
(``dispatch/region_stats.py``) for the regions inside the account's own, by county, city
or province, over a period of local days; a bar chart of the rates that have targets; the
same table as CSV and XLSX. The account's region is the query's area, so no other region's
figure is ever read. Each view and download is audited as ``stats_viewed``."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch.accounts import Role
from dispatch.audit import record
from dispatch.region_stats import (
    COLUMNS,
    RegionRow,
    RegionStats,
    percent,
    region_stats,
    stats_table,
)
from dispatch.regions import RegionLevel
from dispatch.settlement_export import write_csv, write_xlsx
from ivr.console.auth import current_account, require
from ivr.console.settlement import FILES
from ivr.console.state import actor, console_state
from ivr.console.templating import bad_request, render

DEFAULT_DAYS = 30
MAX_DAYS = 366
# (label, part, whole, target %): the rates the chart shows, each against its standard
RATES = (("answered within 15 s", "answered_15s", "to_operators", None),
         ("alarm calls answered within 60 s", "answered_60s", "alarm_calls", 97.5),
         ("alarm calls answered within 180 s", "answered_180s", "alarm_calls", 99.0),
         ("offers accepted", "accepted", "offered", None),
         ("arrivals on time", "on_time", "arrivals_due", None),
         ("caring calls reaching the elder", "care_reached", "care_due", None))


@dataclass(frozen=True)
class Query:
    level: RegionLevel
    first: date
    last: date  # inclusive


@dataclass(frozen=True)
class Bar:
    region: str
    label: str
    share: float | None  # percent; None without data
    target: float | None

    @property
    def width(self) -> int:
        """The bar's length in the chart (0-300)."""
        return round(3 * (self.share or 0))


def _query(request: Request, tz: ZoneInfo, own: RegionLevel) -> Query | str:
    """The page's level and period (local days), or why they are refused."""
    params = request.query_params
    today = datetime.now(tz).date()
    raw_level = params.get("level") or RegionLevel.COUNTY.value
    try:
        level = RegionLevel(raw_level[:16])
        last = date.fromisoformat(params["to"][:10]) if params.get("to") else today
        first = (date.fromisoformat(params["from"][:10]) if params.get("from")
                 else last - timedelta(days=DEFAULT_DAYS - 1))
    except ValueError:
        return "level must be county, city or province, and from/to dates YYYY-MM-DD"
    if level.rank > own.rank:
        return f"Your region is a {own.value}: choose its {own.value} or smaller regions."
    if first > last or (last - first).days >= MAX_DAYS:
        return f"from must be on or before to, at most {MAX_DAYS} days apart"
    return Query(level, first, last)


def _bars(stats: RegionStats) -> list[Bar]:
    bars = []
    for row in [*stats.rows, stats.total()]:
        for label, part, whole, target in RATES:
            total = row.values.get(whole, 0)
            share = 100 * row.values.get(part, 0) / total if total else None
            bars.append(Bar(row.region, label, share, target))
    return bars


async def _stats(request: Request, what: str) -> tuple[RegionStats, Query] | Response:
    state, account = console_state(request), current_account(request)
    assert account is not None
    tz = ZoneInfo(state.settings.dispatch.timezone)
    query = _query(request, tz, account.scope.level)
    if isinstance(query, str):
        return bad_request(request, query)
    since = datetime.combine(query.first, time(), tz)
    until = datetime.combine(query.last + timedelta(days=1), time(), tz)
    async with state.sessions() as db:
        stats = await region_stats(db, query.level, account.scope, since, until)
        await record(db, actor(request), "stats_viewed", state.now(), str(account.scope),
                     {"level": query.level.value, "from": query.first.isoformat(),
                      "to": query.last.isoformat(), "file": what})
    return stats, query


@require(Role.SUPERVISOR)
async def stats_page(request: Request) -> Response:
    found = await _stats(request, "page")
    if isinstance(found, Response):
        return found
    stats, query = found
    rows: list[RegionRow] = [*stats.rows, stats.total()]
    return render(request, "stats.html", {
        "stats": stats, "rows": rows, "query": query, "bars": _bars(stats),
        "percent": percent, "levels": [level.value for level in RegionLevel],
        "file_query": f"level={query.level.value}&from={query.first}&to={query.last}"})


@require(Role.SUPERVISOR)
async def stats_file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ("stats.csv", "stats.xlsx"):
        return bad_request(request, "No such file.", 404)
    found = await _stats(request, name)
    if isinstance(found, Response):
        return found
    stats, query = found
    stem = f"stats-{query.level.value}-{query.first}-{query.last}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{stem}{Path(name).suffix}"
        if name.endswith(".csv"):
            write_csv(path, COLUMNS, stats_table(stats))
            media_type = FILES["vendors.csv"][1]
        else:
            write_xlsx(path, [("stats", COLUMNS, stats_table(stats))])
            media_type = FILES["settlement.xlsx"][1]
        body = path.read_bytes()
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{path.name}"'})


ROUTES = [
    Route("/stats", stats_page, methods=["GET"]),
    Route("/stats/{name}", stats_file, methods=["GET"]),
]
