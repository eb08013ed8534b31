"""An elder's caring calls, edited from the elder's page: add or change a plan (the same
checks as the CSV import, one plan per kind and window start), and stop one.

Only the account's region's elders can be changed; a change is written with its audit row
in one transaction, and a refused form writes nothing.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dispatch.audit import audit_row, record
from dispatch.care_import import MESSAGE_MAX, PlanFields, parse_plan, store_plan
from dispatch.care_plans import stop_plan
from dispatch.console_queries import visible_elder
from dispatch.csv_records import RowError
from ivr.console.auth import current_account, require
from ivr.console.forms import FormError, read_form, text
from ivr.console.state import actor, console_state
from ivr.console.templating import flash, not_found

FIELDS = {"kind": 16, "window": 16, "days": 64, "message": MESSAGE_MAX, "starts_on": 10,
          "ends_on": 10, "quiet_days": 400}
MAX_ID = 2**31 - 1


async def _visible(request: Request, elder_id: int) -> bool:
    """The elder is in the account's region; an attempt on another is audited."""
    state, account = console_state(request), current_account(request)
    assert account is not None
    if elder_id > MAX_ID:
        return False
    async with state.sessions() as db:
        if await visible_elder(db, account.scope, elder_id) is not None:
            return True
        await record(db, actor(request), "care_plan_refused", state.now(), str(elder_id))
    return False


def _back(elder_id: int) -> Response:
    return RedirectResponse(f"/elders/{elder_id}#care-plans", 303)


async def _plan_of_form(request: Request) -> PlanFields:
    form = await read_form(request)
    cells = {name: text(form, name, limit, required=False) or ""
             for name, limit in FIELDS.items()}
    return parse_plan(cells)


@require()
async def save_plan(request: Request) -> Response:
    state = console_state(request)
    elder_id: int = request.path_params["elder_id"]
    if not await _visible(request, elder_id):
        return not_found(request, f"No elder {elder_id} in your region.")
    try:
        plan = await _plan_of_form(request)
    except (FormError, RowError) as exc:
        flash(request, "error", f"Caring call not saved: {exc}")
        return _back(elder_id)
    now = state.now()
    statement, params = audit_row(actor(request), "care_plan_saved", now, str(elder_id), {
        "kind": plan.kind.value, "window": f"{plan.window_start:%H:%M}-"
        f"{plan.window_end:%H:%M}", "weekdays": plan.weekdays,
        "quiet_days": len(plan.quiet_days)})
    try:
        async with state.sessions() as db:
            created, _quiet = await db.run_sync(
                lambda session: store_plan(session.connection(), elder_id, plan, now))
            await db.execute(statement, params)
            await db.commit()
    except IntegrityError:  # the same plan saved twice at once: the other save stands
        flash(request, "error", "Caring call not saved: it was being saved at the same "
                                "moment; see the list below.")
        return _back(elder_id)
    flash(request, "ok", f"Caring call {'added' if created else 'changed'}: "
                         f"{plan.kind.value} {plan.window_start:%H:%M}-{plan.window_end:%H:%M}.")
    return _back(elder_id)


@require()
async def stop(request: Request) -> Response:
    state = console_state(request)
    elder_id: int = request.path_params["elder_id"]
    plan_id: int = request.path_params["plan_id"]
    if not await _visible(request, elder_id):
        return not_found(request, f"No elder {elder_id} in your region.")
    if plan_id > MAX_ID:
        return not_found(request, "No such caring call.")
    now = state.now()
    statement, params = audit_row(actor(request), "care_plan_stopped", now, str(elder_id),
                                  {"plan": plan_id})
    async with state.sessions() as db:
        stopped = await stop_plan(db, elder_id, plan_id, now)
        if stopped:
            await db.execute(statement, params)
        await db.commit()
    flash(request, "ok" if stopped else "error",
          "Caring call stopped." if stopped else "That caring call is not running.")
    return _back(elder_id)


ROUTES = [
    Route("/elders/{elder_id:int}/care-plans", save_plan, methods=["POST"]),
    Route("/elders/{elder_id:int}/care-plans/{plan_id:int}/stop", stop, methods=["POST"]),
]
