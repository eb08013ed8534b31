"""Who is signed in, and the guard every page uses.

The session (a signed, HttpOnly, SameSite=Strict cookie) holds the account id and when it
was last used; a session idle longer than ``console.idle_timeout_s`` is signed out. The
account is read from the database on each request, so a disabled account loses access at
once. ``current_account(request)`` is what pages and the live feed ask; ``require(role)``
guards an endpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dispatch.account_store import account_by_id
from dispatch.accounts import Account, Role
from ivr.console.state import ConsoleState
from ivr.console.templating import render

ACCOUNT_KEY = "account_id"
SEEN_KEY = "seen"
RANK = {Role.OPERATOR: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}
Endpoint = Callable[[Request], Awaitable[Response]]


def current_account(request: Request) -> Account | None:
    """The signed-in account of this request, or None."""
    account: Account | None = request.scope.get("state", {}).get("account")
    return account


def session_expired(request: Request) -> bool:
    """True if this request came with a session that timed out."""
    return bool(request.scope.get("state", {}).get("session_expired"))


def allows(account: Account, role: Role) -> bool:
    """True if ``account``'s role is ``role`` or above (operator < supervisor < admin)."""
    return RANK[account.role] >= RANK[role]


def require(role: Role = Role.OPERATOR) -> Callable[[Endpoint], Endpoint]:
    """Guard an endpoint: signed in (else the login page, or 401 for scripts), and at least
    ``role`` (else 403)."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            account = current_account(request)
            if account is None:
                return sign_in_first(request)
            if not allows(account, role):
                return render(request, "message.html", {
                    "title": "Not allowed",
                    "message": f"This page is for the {role.value} role and above."}, 403)
            return await endpoint(request)

        return guarded

    return wrap


def sign_in_first(request: Request) -> Response:
    """To the login page (pages), or 401 with the reason (event streams, scripts)."""
    why = "expired" if session_expired(request) else "required"
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(f"/login?why={why}", 303)
        request.session["next"] = target[:512]
        return response
    message = ("your session expired: sign in again" if why == "expired"
               else "sign in first")
    return PlainTextResponse(message, 401)


def sign_in(request: Request, account: Account) -> None:
    """Start a fresh session for ``account`` (a new CSRF token too)."""
    state: ConsoleState = request.app.state.console
    request.session.clear()
    request.session[ACCOUNT_KEY] = account.id
    request.session[SEEN_KEY] = state.now().timestamp()


class AccountMiddleware:
    """Puts the session's account on ``request.state.account`` (None if signed out or idle
    too long). Runs inside the session middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state: ConsoleState = scope["app"].state.console
        session: dict[str, Any] = scope["session"]
        account, expired = None, False
        account_id = session.get(ACCOUNT_KEY)
        if isinstance(account_id, int):
            now = state.now().timestamp()
            seen = session.get(SEEN_KEY)
            if (not isinstance(seen, int | float)
                    or now - seen > state.settings.console.idle_timeout_s):
                expired = True
            else:
                async with state.sessions() as db:
                    account = await account_by_id(db, account_id)
            if account is None:
                for key in (ACCOUNT_KEY, SEEN_KEY):
                    session.pop(key, None)
            else:
                session[SEEN_KEY] = now
        scope.setdefault("state", {}).update(account=account, session_expired=expired)
        await self.app(scope, receive, send)


def safe_next(target: object) -> str:
    """A local path to go to after signing in ("/" for anything else)."""
    if isinstance(target, str) and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target and target.isprintable():
        return target
    return "/"
