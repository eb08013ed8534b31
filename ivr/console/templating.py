"""Rendering pages: every template gets the account, the CSRF token and the request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from ivr.console.csrf import session_token
from ivr.console.state import console_state

TEMPLATES_DIR = Path(__file__).with_name("templates")
STATIC_DIR = Path(__file__).with_name("static")
FLASH_KEY = "flash"


def make_templates(extra_dirs: tuple[Path, ...] = ()) -> Jinja2Templates:
    """The console's templates (autoescaped), then any folders the live pages add."""
    return Jinja2Templates(directory=[TEMPLATES_DIR, *extra_dirs])


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status: int = 200) -> HTMLResponse:
    """Template ``name`` with ``context``, the signed-in account and the CSRF token."""
    from ivr.console.auth import current_account

    state = console_state(request)
    values = {"account": current_account(request), "csrf_token": session_token(request.session),
              "now": state.now(), "flash": request.session.pop(FLASH_KEY, None),
              **(context or {})}
    return state.templates.TemplateResponse(request, name, values, status_code=status)


def flash(request: Request, kind: str, message: str) -> None:
    """A one-time message ("ok" or "error") for the next page this session renders."""
    request.session[FLASH_KEY] = [kind, message]


def not_found(request: Request, what: str) -> HTMLResponse:
    """404 with a sentence saying what was not found (never whether it exists elsewhere)."""
    return render(request, "message.html", {"title": "Not found", "message": what}, 404)


def bad_request(request: Request, message: str, status: int = 400) -> HTMLResponse:
    return render(request, "message.html", {"title": "Not accepted", "message": message}, status)
