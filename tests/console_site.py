"""A console on a real database with a small registry (tests/console_world.py), signed in
as zhang, a county operator of Chaoyang with a softphone seat, in a real Chromium: the
fixtures the console's page tests share (a plugin of tests/conftest.py; a test module's own
fixture of the same name takes its place there)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatch.accounts import Role
from dispatch.db import make_sync_engine, upgrade
from dispatch.models import AuditEntry
from ivr.config import load_settings
from ivr.console.app import create_app
from tests.browser import ConsoleServer, account, sign_in
from tests.console_world import World, seed_world
from tests.ports import closed_port
from tests.storage import rows


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, World]]:
    """(console URL, database URL, registry): AMI enabled but unreachable."""
    folder: Path = tmp_path_factory.mktemp("console")
    db_url = f"sqlite:///{folder / 'console.sqlite3'}"
    upgrade(db_url)
    world = seed_world(db_url)
    account(db_url, "zhang", Role.OPERATOR, "county:110105", seat="op1001")
    account(db_url, "wu", Role.OPERATOR, "county:110105")  # no softphone seat
    settings = load_settings(None, database={"url": db_url},
                             ami={"enabled": True, "secret": "not-reachable",
                                  "port": closed_port(), "ping_timeout_s": 0.5},
                             recordings={"dir": str(recordings_dir(db_url))})
    with ConsoleServer(create_app(settings)) as server:
        yield server.url, db_url, world


def recordings_dir(db_url: str) -> Path:
    """The console's recordings folder: beside its SQLite database."""
    return Path(db_url.removeprefix("sqlite:///")).parent / "recordings"


def session_of(chromium: Any, url: str, name: str) -> dict[str, Any]:
    """The cookies of ``name``'s session, signed in once through the login form."""
    context = chromium.new_context()
    try:
        sign_in(context.new_page(), url, name)
        state: dict[str, Any] = context.storage_state()
        return state
    finally:
        context.close()


@pytest.fixture(scope="module")
def signed_in(chromium: Any, console: tuple[str, str, World]) -> dict[str, Any]:
    """The cookies of zhang's session (a county operator of Chaoyang), signed in once."""
    return session_of(chromium, console[0], "zhang")


@pytest.fixture
def page(chromium: Any, signed_in: dict[str, Any]) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1200, "height": 800},
                                   storage_state=signed_in)
    try:
        yield context.new_page()
    finally:
        context.close()


def audit(db_url: str, action: str) -> list[Any]:
    return rows(db_url, select(AuditEntry).where(AuditEntry.action == action))


def write(db_url: str, statement: Any) -> None:
    engine = make_sync_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(statement)
    finally:
        engine.dispose()
