"""Signing in and out (each audited; failed logins throttled in the query layer)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dispatch.account_store import sign_in as check_login
from dispatch.audit import Actor, record
from ivr.console.auth import current_account, safe_next, sign_in
from ivr.console.forms import FormError, read_form, text
from ivr.console.state import client_address, console_state
from ivr.console.templating import render

WHY = {"expired": "Your session expired: sign in again.", "required": "Sign in first."}


async def login_page(request: Request) -> Response:
    if current_account(request) is not None:
        return RedirectResponse("/", 303)
    return render(request, "login.html", {"message": WHY.get(request.query_params.get("why", ""))})


async def login(request: Request) -> Response:
    state = console_state(request)
    try:
        form = await read_form(request)
        name = text(form, "name", 64) or ""
        password = text(form, "password", 256) or ""
    except FormError as exc:
        return render(request, "login.html", {"message": str(exc)}, 400)
    async with state.sessions() as db:
        outcome = await check_login(db, name, password, client_address(request), state.now(),
                                    state.settings.console.login_failures)
    if outcome.throttled:
        return render(request, "login.html", {
            "message": "Too many failed logins: wait a minute and try again."}, 429)
    if outcome.account is None:
        return render(request, "login.html", {"message": "Wrong name or password."}, 401)
    target = safe_next(request.session.get("next"))
    sign_in(request, outcome.account)
    return RedirectResponse(target, 303)


async def logout(request: Request) -> Response:
    account = current_account(request)
    if account is not None:
        state = console_state(request)
        async with state.sessions() as db:
            await record(db, Actor.of(account, client_address(request)), "logout", state.now())
    request.session.clear()
    return RedirectResponse("/login", 303)


ROUTES = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
]
