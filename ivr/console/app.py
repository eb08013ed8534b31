"""The console application: ``create_app(settings, routes=...)`` builds it.

Middleware, outermost first: security headers, the signed session cookie, CSRF and body size
checks on every state-changing request, then the signed-in account. Pages come from
``ivr.console.pages``; other parts of the console (the live feed) pass their own routes,
templates folders and lifespans, and guard their endpoints with ``auth.require``.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dispatch.db import async_sessionmaker_for, make_async_engine
from ivr.config import Settings
from ivr.console import login, pages
from ivr.console.auth import AccountMiddleware
from ivr.console.csrf import CsrfMiddleware
from ivr.console.state import ConsoleState
from ivr.console.templating import STATIC_DIR, make_templates, render

log = logging.getLogger(__name__)

SESSION_COOKIE = "hotline_console"
Lifespan = Callable[[Starlette], contextlib.AbstractAsyncContextManager[Any]]
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"media-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
     b"base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]


def create_app(settings: Settings, *, routes: Sequence[BaseRoute] = (),
               template_dirs: Sequence[Path] = (), lifespans: Sequence[Lifespan] = (),
               now: Callable[[], datetime] | None = None) -> Starlette:
    """The console's ASGI app on ``settings`` (database, ``[console]`` section).

    ``routes`` are added after the console's own pages (before the static files);
    ``template_dirs`` are searched after the console's templates, so their pages can extend
    ``base.html``; each of ``lifespans`` is entered at startup, in order, with the app
    (``app.state.console`` is a :class:`ConsoleState`). ``now`` replaces the clock.
    """
    engine = make_async_engine(settings.database.url, pool_size=5)
    key = settings.console.secret_key
    if not key:
        key = secrets.token_urlsafe(48)
        log.warning("console.secret_key is not set: sessions end when the console restarts")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with contextlib.AsyncExitStack() as stack:
                for extra in lifespans:
                    await stack.enter_async_context(extra(app))
                yield
        finally:
            await engine.dispose()

    app = Starlette(
        routes=[*login.ROUTES, *pages.ROUTES, *routes,
                Mount("/static", StaticFiles(directory=STATIC_DIR), name="static")],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SessionMiddleware, secret_key=key, session_cookie=SESSION_COOKIE,
                       max_age=None, same_site="strict",
                       https_only=settings.console.secure_cookies),
            Middleware(CsrfMiddleware, max_body_bytes=settings.console.max_body_bytes),
            Middleware(AccountMiddleware),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.console = ConsoleState(
        settings=settings, sessions=async_sessionmaker_for(engine),
        templates=make_templates(tuple(template_dirs)), now=now or (lambda: datetime.now(UTC)))
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "No such page." if exc.status_code == 404 else str(exc.detail)
    return render(request, "message.html", {"title": f"Error {exc.status_code}",
                                            "message": message}, exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("console request %s %s failed", request.method, request.url.path,
                  exc_info=exc)
    return Response("the console failed on this request; it is logged", 500,
                    media_type="text/plain")


class SecurityHeaders:
    """Content-Security-Policy (no inline script, nothing from elsewhere) and friends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
