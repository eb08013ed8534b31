"""Console sign-in in a real Chromium: sessions, CSRF, the login throttle, the idle timeout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatch.accounts import Role
from dispatch.db import make_sync_engine, upgrade
from dispatch.models import AuditEntry
from ivr.config import load_settings
from ivr.console.app import create_app
from tests.browser import ConsoleServer, account, screenshot, sign_in


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
    account(db_url, "wang", Role.OPERATOR, "county:110105")
    settings = load_settings(None, database={"url": db_url}, ami={"enabled": False},
                             console={"idle_timeout_s": 600.0, "login_failures": 5})
    clock = Clock()
    with ConsoleServer(create_app(settings, now=clock)) as server:
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
    page.goto(f"{server.url}/")
    assert page.url.startswith(f"{server.url}/login")
    screenshot(page, "login")
    sign_in(page, server.url, "zhang")
    assert page.url == f"{server.url}/"
    assert "zhang · operator · county:110105 · op1001" in page.inner_text("header")
    cookie = next(c for c in page.context.cookies() if c["name"] == "hotline_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert any(row.account_name == "zhang" for row in _audit(db_url, "login"))
    page.click("header button[type=submit]")
    assert page.url == f"{server.url}/login"
    page.goto(f"{server.url}/")
    assert page.url.startswith(f"{server.url}/login")
