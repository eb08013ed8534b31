"""Console sign-in in a real Chromium: sessions, the idle timeout, roles, the login
throttle; and the way other parts add their pages (``create_app(routes=...)``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dispatch.account_store import disable_account
from dispatch.accounts import Role
from dispatch.db import async_sessionmaker_for, make_async_engine, make_sync_engine, upgrade
from dispatch.models import AuditEntry
from ivr.config import load_settings
from ivr.console.app import create_app
from ivr.console.auth import current_account, require
from ivr.console.templating import render
from tests.browser import PASSWORD, ConsoleServer, account, in_own_loop, screenshot, sign_in

IDLE_S = 600.0
LIVE_TEMPLATE = """{% extends "base.html" %}
{% block live %}<p id="board">board for {{ account.name }} ({{ who }})</p>{% endblock %}
"""


@require(Role.SUPERVISOR)
async def board(request: Request) -> Response:
    """A page added from outside, as the live parts add theirs."""
    account = current_account(request)
    assert account is not None
    return render(request, "board.html", {"who": account.scope})


class Clock:
    """The console's clock, moved by the test (the idle timeout)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ConsoleServer, str, Clock]]:
    folder: Path = tmp_path_factory.mktemp("console")
    db_url = f"sqlite:///{folder / 'console.sqlite3'}"
    upgrade(db_url)
    account(db_url, "zhang", Role.OPERATOR, "county:110105", seat="op1001")
    account(db_url, "chen", Role.SUPERVISOR, "city:110100")
    account(db_url, "sun", Role.ADMIN, "province:110000")
    settings = load_settings(None, database={"url": db_url}, ami={"enabled": False},
                             console={"idle_timeout_s": IDLE_S, "login_failures": 5})
    clock = Clock()
    (folder / "templates").mkdir()
    (folder / "templates" / "board.html").write_text(LIVE_TEMPLATE, encoding="utf-8")
    app = create_app(settings, now=clock, routes=[Route("/board", board)],
                     template_dirs=[folder / "templates"])
    with ConsoleServer(app) as server:
        yield server, db_url, clock


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def _audit(db_url: str, action: str) -> list[AuditEntry]:
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(AuditEntry).where(AuditEntry.action == action)).all())
    finally:
        engine.dispose()


def test_sign_in_and_out(console: tuple[ConsoleServer, str, Clock], page: Any) -> None:
    server, db_url, _ = console
    answer = page.goto(f"{server.url}/")
    assert page.url.startswith(f"{server.url}/login")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    screenshot(page, "login")
    sign_in(page, server.url, "zhang")
    assert page.url == f"{server.url}/"
    assert "zhang · operator · county:110105 · op1001" in page.inner_text("header")
    cookie = next(c for c in page.context.cookies() if c["name"] == "hotline_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert any(row.account_name == "zhang" for row in _audit(db_url, "login"))
    page.click("header button[type=submit]")
    assert page.url == f"{server.url}/login"
    assert any(row.account_name == "zhang" for row in _audit(db_url, "logout"))
    page.goto(f"{server.url}/")
    assert page.url.startswith(f"{server.url}/login")


def test_a_page_asked_for_before_signing_in_opens_after_it(
        console: tuple[ConsoleServer, str, Clock], page: Any) -> None:
    server, _, _ = console
    page.goto(f"{server.url}/orders?q=%E6%9D%8E")
    assert page.url == f"{server.url}/login?why=required"
    assert page.inner_text("#login-message") == "Sign in first."
    sign_in(page, server.url, "zhang")
    assert page.url == f"{server.url}/orders?q=%E6%9D%8E"


def test_added_routes_are_guarded_by_role_and_extend_the_base_page(
        console: tuple[ConsoleServer, str, Clock], page: Any) -> None:
    server, _, _ = console
    sign_in(page, server.url, "zhang")
    assert page.goto(f"{server.url}/board").status == 403
    page.click("header button[type=submit]")
    sign_in(page, server.url, "chen")
    assert page.goto(f"{server.url}/board").status == 200
    assert page.inner_text("#live #board") == "board for chen (city:110100)"
    assert page.locator("header nav a").count() >= 4  # the base page around it


def test_an_idle_session_is_signed_out(console: tuple[ConsoleServer, str, Clock],
                                       page: Any) -> None:
    server, _, clock = console
    sign_in(page, server.url, "zhang")
    clock.offset = timedelta(seconds=IDLE_S - 30)
    assert page.goto(f"{server.url}/").url == f"{server.url}/"  # used: the idle time restarts
    clock.offset = timedelta(seconds=2 * IDLE_S - 60)
    page.goto(f"{server.url}/orders")
    assert page.url == f"{server.url}/orders"
    clock.offset = timedelta(seconds=3 * IDLE_S)
    token = page.evaluate("hotline.csrfToken()")
    answer = page.request.post(f"{server.url}/orders/new", form={"csrf_token": token})
    assert (answer.status, answer.text()) == (401, "your session expired: sign in again")
    page.goto(f"{server.url}/orders")
    assert page.url == f"{server.url}/login?why=required"  # the expiry was answered once
    clock.offset = timedelta()


def test_a_disabled_account_loses_its_open_session_at_once(
        console: tuple[ConsoleServer, str, Clock], page: Any) -> None:
    server, db_url, _ = console
    sign_in(page, server.url, "sun")
    assert page.goto(f"{server.url}/board").status == 200  # an admin passes a supervisor's guard
    in_own_loop(_disable(db_url, "sun"))
    page.goto(f"{server.url}/board")
    assert page.url == f"{server.url}/login?why=required"


async def _disable(db_url: str, name: str) -> None:
    engine = make_async_engine(db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            assert await disable_account(session, name, datetime.now(UTC))
    finally:
        await engine.dispose()


def test_the_sixth_failed_login_in_a_minute_is_throttled(
        console: tuple[ConsoleServer, str, Clock], page: Any) -> None:
    server, db_url, _ = console
    for attempt in range(5):
        sign_in(page, server.url, "wang", f"wrong password {attempt}")
        assert page.inner_text("#login-message") == "Wrong name or password."
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        sign_in(page, server.url, "wang", PASSWORD)  # the right one, refused all the same
    assert answer.value.status == 429
    assert page.inner_text("#login-message") == (
        "Too many failed logins: wait a minute and try again.")
    screenshot(page, "login-throttled")
    assert len(_audit(db_url, "login_failed")) == 5
    assert [row.account_name for row in _audit(db_url, "login_throttled")] == ["wang"]
