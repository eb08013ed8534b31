"""Settlement pages, for supervisors and above: the months in the ledger of the counties in
the account's region, each with its vendors' statements and its subsidy report by category,
and the same as CSV and XLSX files (dispatch/settlement_export.py).

A county outside the account's region is refused as not found, and audited; every
statement viewed or downloaded is audited.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch.accounts import Role
from dispatch.audit import record
from dispatch.ledger import to_fen, yuan
from dispatch.reconcile import settled_months
from dispatch.regions import Place
from dispatch.settlement import Settlement, settlement
from dispatch.settlement_export import write_settlement
from ivr.console.auth import current_account, require
from ivr.console.state import actor, console_state
from ivr.console.templating import not_found, render

FILES = {"vendors.csv": ("-vendors.csv", "text/csv; charset=utf-8"),
         "subsidy.csv": ("-subsidy.csv", "text/csv; charset=utf-8"),
         "settlement.xlsx": (".xlsx", "application/vnd.openxmlformats-officedocument."
                                      "spreadsheetml.sheet")}


def county_place(county: str) -> Place:
    """A county code's place: its city and province codes are its leading digits (GB/T
    2260)."""
    return Place(province_code=f"{county[:2]}0000", city_code=f"{county[:4]}00",
                 county_code=county)


def _valid(county: str, month: str) -> bool:
    return (len(county) == 6 and county.isdigit() and len(month) == 7 and month[4] == "-"
            and month[:4].isdigit() and month[5:].isdigit() and 1 <= int(month[5:]) <= 12)


@require(Role.SUPERVISOR)
async def months(request: Request) -> Response:
    account = current_account(request)
    assert account is not None
    async with console_state(request).sessions() as db:
        rows = [(county, month) for county, month in await settled_months(db)
                if account.scope.covers(county_place(county))]
    return render(request, "settlement.html", {"months": rows, "report": None})


async def _report(request: Request, what: str) -> Settlement | Response:
    """The county's month if the account may see it (audited either way)."""
    state, account = console_state(request), current_account(request)
    assert account is not None
    county, month = request.path_params["county"], request.path_params["month"]
    if not _valid(county, month):
        return not_found(request, "No such county and month.")
    target = f"{county}/{month}"
    async with state.sessions() as db:
        if not account.scope.covers(county_place(county)):
            await record(db, actor(request), "settlement_refused", state.now(), target)
            return not_found(request, f"No settlement of county {county} in your region.")
        report = await settlement(db, county, month, to_fen(
            state.settings.money.upheld_complaint_deduction_yuan))
        await record(db, actor(request), "settlement_viewed", state.now(), target,
                     {"file": what})
    return report


@require(Role.SUPERVISOR)
async def month_page(request: Request) -> Response:
    report = await _report(request, "page")
    if isinstance(report, Response):
        return report
    return render(request, "settlement.html", {"months": None, "report": report,
                                               "yuan": yuan})


@require(Role.SUPERVISOR)
async def month_file(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in FILES:
        return not_found(request, "No such file.")
    report = await _report(request, name)
    if isinstance(report, Response):
        return report
    suffix, media_type = FILES[name]
    with tempfile.TemporaryDirectory() as folder:
        path = next(p for p in write_settlement(report, Path(folder))
                    if p.name.endswith(suffix))
        body = path.read_bytes()
        filename = path.name
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


ROUTES = [
    Route("/settlement", months, methods=["GET"]),
    Route("/settlement/{county}/{month}", month_page, methods=["GET"]),
    Route("/settlement/{county}/{month}/{name}", month_file, methods=["GET"]),
]
