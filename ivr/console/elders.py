"""The elder's profile page, with their caring calls: every view is audited, and only the
region's elders show."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch.audit import record
from dispatch.care_plans import elder_care_plans
from dispatch.console_queries import visible_elder
from dispatch.models import CareKind
from dispatch.profile import elder_profile
from ivr.console.auth import current_account, require
from ivr.console.state import actor, console_state
from ivr.console.templating import not_found, render

MAX_ID = 2**31 - 1
# the kinds a plan may have (a holiday greeting belongs to a campaign)
PLAN_KINDS = (CareKind.CHECK_IN, CareKind.COMPANION, CareKind.REMINDER)


@require()
async def elder_page(request: Request) -> Response:
    state = console_state(request)
    account = current_account(request)
    assert account is not None
    elder_id: int = request.path_params["elder_id"]
    if elder_id > MAX_ID:
        return not_found(request, "No such elder.")
    async with state.sessions() as db:
        found = await visible_elder(db, account.scope, elder_id)
        profile = await elder_profile(db, elder_id) if found is not None else None
        today = state.now().astimezone(ZoneInfo(state.settings.dispatch.timezone)).date()
        plans, quiet = (await elder_care_plans(db, elder_id, today) if profile is not None
                        else ([], []))
        await record(db, actor(request), "elder_viewed" if profile else "elder_refused",
                     state.now(), str(elder_id))
    if profile is None:
        return not_found(request, f"No elder {elder_id} in your region.")
    return render(request, "elder.html", {"elder": profile, "plans": plans, "quiet": quiet,
                                          "kinds": PLAN_KINDS})


ROUTES = [Route("/elders/{elder_id:int}", elder_page, methods=["GET"])]
