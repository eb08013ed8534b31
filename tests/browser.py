"""The console under uvicorn on a real port, and Debian's Chromium driven by Playwright.

``ConsoleServer`` runs an app (``ivr.console.app.create_app``) in a thread with its own event
loop, on a socket bound before it starts, so it is reachable as soon as it is created.
``chromium`` (module scope) is a Playwright browser for synchronous tests;
``async_chromium()`` is the same for tests that run on an event loop (engine stacks).
``account(...)`` creates a console account in a database, the way ``hotline user add`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from starlette.applications import Starlette

from dispatch.account_store import add_account
from dispatch.accounts import Account, Role
from dispatch.db import async_sessionmaker_for, make_async_engine
from dispatch.regions import RegionScope
from ivr.console.server import bind, uvicorn_server

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
LAUNCH = {"executable_path": CHROMIUM, "args": ["--no-sandbox"]}
PASSWORD = "correct horse battery"
SCREENSHOTS_ENV = "HOTLINE_SCREENSHOTS"  # `make screenshots` sets it to docs/console


class ConsoleServer:
    """``app`` served on 127.0.0.1 (``port``, or a free one) from a thread, until
    ``stop()``."""

    def __init__(self, app: Starlette, port: int = 0) -> None:
        self.app = app
        self._sock = bind("127.0.0.1", port)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn_server(app)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="console", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._sock]))
        except BaseException as exc:  # reported by stop()
            self._failure = exc

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()
        assert not self._thread.is_alive(), "the console did not stop"
        if self._failure is not None:
            raise self._failure

    def __enter__(self) -> ConsoleServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


async def async_account(db_url: str, name: str, role: Role, region: str,
                        seat: str | None = None) -> Account:
    """A console account with the password ``PASSWORD`` (on the running event loop)."""
    engine = make_async_engine(db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            return await add_account(session, name, role, RegionScope.parse(region),
                                     PASSWORD, datetime.now(UTC), seat=seat)
    finally:
        await engine.dispose()


def account(db_url: str, name: str, role: Role, region: str, seat: str | None = None
            ) -> Account:
    """A console account with the password ``PASSWORD`` (from any thread, even one whose
    event loop runs, as Playwright's sync API's does)."""
    return in_own_loop(async_account(db_url, name, role, region, seat))


def in_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end on a fresh event loop in a thread of its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def _require_chromium() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's sync API) for the test module."""
    from playwright.sync_api import sync_playwright

    _require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**LAUNCH)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.asynccontextmanager
async def async_chromium() -> AsyncIterator[Any]:
    """A headless Chromium (Playwright's async API) on the running event loop."""
    from playwright.async_api import async_playwright

    _require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**LAUNCH)
        try:
            yield browser
        finally:
            await browser.close()


def sign_in(page: Any, base_url: str, name: str, password: str = PASSWORD) -> None:
    """Sign ``page`` in through the login form (sync API)."""
    page.goto(f"{base_url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("#login-form button[type=submit]")


async def async_sign_in(page: Any, base_url: str, name: str, password: str = PASSWORD) -> None:
    """Sign ``page`` in through the login form (async API)."""
    await page.goto(f"{base_url}/login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", password)
    async with page.expect_navigation():
        await page.click("#login-form button[type=submit]")


def screenshot(page: Any, name: str) -> Path | None:
    """A full-page screenshot, saved as <name>.png in $HOTLINE_SCREENSHOTS when set (the
    README's pictures); taken all the same otherwise, so the page must render."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        assert page.screenshot(full_page=True)
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


async def async_screenshot(page: Any, name: str) -> Path | None:
    """``screenshot`` for the async API."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        assert await page.screenshot(full_page=True)
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    return path
