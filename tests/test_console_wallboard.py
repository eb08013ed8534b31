"""The supervisor's wallboard in a real Chromium, through ``hotline demo --console``'s
console (its demo supervisor and one-time password), beside the engine and the simulator
over real TCP: operators logged in, paused and on a call from the queue member events, and
today's answer figures from the calls the engine recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispatch.phones import national
from ivr.demo.console import DEMO_ACCOUNT, demo_console
from tests.browser import async_chromium, async_screenshot, async_sign_in
from tests.callstack import open_stack

TIMEOUT_MS = 30_000
ONE_PAUSED = [
    {"name": "op1", "answer_delay_s": 2.0, "talk_s": 5.0, "available": True},
    {"name": "op2", "answer_delay_s": 3.0, "talk_s": 5.0, "available": False},
]


async def tile(page: Any, name: str, value: str) -> None:
    await page.wait_for_function(
        "([id, want]) => document.querySelector('#' + id + ' .value').textContent === want",
        arg=[name, value], timeout=TIMEOUT_MS)


async def test_the_demo_supervisor_watches_the_wallboard(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=60, ami=True):
        assert stack.engine is not None
        async with demo_console(stack.engine, 0) as console:
            banner = console.banner()
            assert console.url.startswith("http://127.0.0.1:")
            assert DEMO_ACCOUNT in banner and console.password in banner
            async with async_chromium() as browser:
                page = await browser.new_page()
                await async_sign_in(page, console.url.rstrip("/"), DEMO_ACCOUNT,
                                    console.password)
                await page.goto(f"{console.url}wallboard")
                await page.wait_for_selector("#wallboard[data-loaded=yes]",
                                             timeout=TIMEOUT_MS)
                await tile(page, "w-logged-in", "2")
                await tile(page, "w-available", "2")
                await tile(page, "w-waiting", "0")
                await stack.sim.request("operators", operators=ONE_PAUSED)
                await tile(page, "w-paused", "1")
                await tile(page, "w-available", "1")
                await stack.call(national(stack.numbers["unknown"][0]))
                await tile(page, "w-answered15", "100.0 %")
                await tile(page, "w-abandoned", "0")
                await tile(page, "w-escalated", "0")
                await page.wait_for_selector("#feed-state[data-state=live]",
                                             timeout=TIMEOUT_MS)
                await async_screenshot(page, "console-wallboard")
