"""The operators' console under load: from a call's queue entry to its card in a real page.

Handset emergencies arrive at 10 per second and stay up 50 s (500 in progress), as in the
emergency benchmark, while 100 consoles are connected to one ``hotline console`` process: a
few real Chromium pages of the live screen and plain event-stream clients (in a process of
their own). Times are wall-clock on this machine: the queue entry is the simulator's stamp of
the Queue application (the operators' phones start ringing then), a card's time is when the
page's DOM got it (a MutationObserver on the cards), a client's time when the event arrived.

Baseline, same run: a raw XREAD reader of the Redis stream (no console), stream entry ->
received; the console's own fan-out is the plain clients' stream entry -> received.

Checks: every emergency has its card on every real page and its screen pop at every plain
client and at the raw reader; the console's log has no error; the engine checks of the
emergency benchmark (its order, call record, queue entry, screen pop, escalation).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dispatch.accounts import Role
from dispatch.citygen import sample_numbers
from dispatch.stats import percentile
from ivr.config import load_settings
from ivr.demo.simproc import SimulatorProcess
from ivr.engine import Engine, tune_garbage_collector
from ivr.metrics import REGISTRY
from tests.bench.calls import _city
from tests.bench.checks import DRAIN_S, Bench, standalone
from tests.bench.emergency import (
    HOLD_REAL_S,
    RATE_PER_S,
    SPEED,
    Timing,
    _check_emergencies,
    drive,
    operators,
    screen_pops,
    timings,
)
from tests.browser import LAUNCH, PASSWORD, account

CALLS = 600
PAGES = 4
CLIENTS = 100
SECRET = "b" * 40
# records every card the page inserts, with the page's wall clock (no hook in the console)
OBSERVER = """
window.__cards = [];
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("cards");
  if (!box) { return; }
  new MutationObserver((changes) => {
    const now = Date.now();
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (node.dataset && node.dataset.uniqueid) {
          window.__cards.push([node.dataset.uniqueid, now, Number(node.dataset.since)]);
        }
      }
    }
  }).observe(box, { childList: true });
});
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError("the console exited at start; see its log")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def console_process(db_url: str, redis_url: str, prefix: str, log: Path
                          ) -> AsyncIterator[str]:
    """``hotline console`` in a process of its own; yields its URL."""
    port = _free_port()
    env = {**os.environ, "HOTLINE_DATABASE__URL": db_url, "HOTLINE_REDIS__URL": redis_url,
           "HOTLINE_REDIS__KEY_PREFIX": prefix, "HOTLINE_CONSOLE__SECRET_KEY": SECRET,
           "HOTLINE_AMI__ENABLED": "false"}
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "ivr.cli", "console", "--port",
                                    str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        await _until_listening(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _signed_in(browser: Any, url: str, name: str) -> Any:
    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    await page.add_init_script(OBSERVER)
    await page.goto(f"{url}/login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.goto(f"{url}/live")
    await page.wait_for_selector("#feed-state[data-state=live]", timeout=60_000)
    return page


async def _clients(url: str, cookie: str, count: int, redis_url: str, stream: str,
                   expect: int, timeout_s: float, out: Path) -> tuple[Any, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.console_clients", "--url", f"{url}/live/events",
        "--cookie", cookie, "--clients", str(count), "--redis", redis_url, "--stream", stream,
        "--expect", str(expect), "--timeout", str(timeout_s), "--out", str(out),
        stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 90)
    if json.loads(line or b"{}").get("ready") != count:
        raise RuntimeError("the plain event-stream clients did not all connect")
    return process, process.stdout


def _ms(values: list[float], q: int) -> float:
    return round(percentile(values, q), 1)


async def _run(bench: Bench, calls: int, hold_s: float, pages: int, clients: int) -> None:
    from playwright.async_api import async_playwright

    run = bench.run_dir("console")
    db_url = f"sqlite:///{run / 'hotline.sqlite3'}"
    _city(db_url)
    handsets = sample_numbers(db_url, 500, 7)["handsets"]
    prefix = f"benchc{time.monotonic_ns() % 10**9}:"
    settings = load_settings(
        None, database={"url": db_url}, agi={"port": 0}, ami={"enabled": False},
        redis={"url": "", "embedded_path": str(run / "redis.db"), "key_prefix": prefix},
        clock={"speed": SPEED}, spool={"dir": str(run / "spool")},
        alarms={"spool_dir": str(run / "alarms")}, dispatch={"enabled": False})
    engine = Engine(settings)
    await engine.start(migrate=False, connect_ami=False)
    assert engine.redis is not None and engine.redis.embedded is not None
    redis_url = f"unix://{engine.redis.embedded.socket_file}"
    stream = f"{prefix}events"
    province = await asyncio.to_thread(_province, db_url)
    for i in range(pages + 1):
        await asyncio.to_thread(account, db_url, f"bench{i}", Role.OPERATOR,
                                f"province:{province}", f"seat{i}")
    sim: SimulatorProcess | None = None
    cards: list[list[tuple[str, float, float]]] = []
    try:
        sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{engine.agi_port}",
                                           speed=SPEED,
                                           log_path=bench.log_file(run / "sim.log"))
        await sim.connect_engine(engine)
        tune_garbage_collector()
        await sim.request("operators", operators=operators(hold_s))
        console_log = run / "console.log"
        async with console_process(db_url, redis_url, prefix, console_log) as url, \
                async_playwright() as playwright:
            browser = await playwright.chromium.launch(**LAUNCH)
            shown = [await _signed_in(browser, url, f"bench{i}") for i in range(pages)]
            # the plain clients' session, signed in through the form; that page then closes
            sse_page = await _signed_in(browser, url, f"bench{pages}")
            cookie = "; ".join(f"{c['name']}={c['value']}"
                               for c in await sse_page.context.cookies())
            await sse_page.context.close()
            listeners, output = await _clients(url, cookie, clients - pages, redis_url,
                                               stream, calls, calls / RATE_PER_S + hold_s + 120,
                                               run / "clients.json")
            await _pages_known(engine)
            results = await drive(sim, handsets, calls, RATE_PER_S)
            await asyncio.wait_for(output.readline(), 300)
            await listeners.wait()
            heard = json.loads((run / "clients.json").read_text(encoding="utf-8"))
            cards = [[tuple(card) for card in await page.evaluate("window.__cards")]
                     for page in shown]
            await browser.close()
        pops = await screen_pops(engine)
        waited = {outcome: REGISTRY.get_sample_value("hotline_screen_pops_shown_total",
                                                     {"outcome": outcome}) or 0
                  for outcome in ("in_time", "late")}
    finally:
        await engine.stop(grace_s=DRAIN_S)
        if sim is not None:
            await sim.stop()
    await bench.no_tasks_left("console run")
    calls_made = timings(results, sim.real_start)
    await _check_emergencies(bench, "console", db_url, calls_made, pops)
    uniqueids = [c.uniqueid for c in calls_made]
    for i, seen in enumerate(cards):
        bench.missing(f"page {i}: cards", uniqueids, {uid for uid, _, _ in seen})
    bench.missing("raw stream reader: screen pops", uniqueids, {u for u, _ in heard["raw"]})
    # every client's screen pops, as (client, call) pairs: one line for all of them
    bench.missing(f"event-stream clients ({len(heard['sse'])}): screen pops",
                  [(i, uid) for i in range(len(heard["sse"])) for uid in uniqueids],
                  {(i, u) for i, got in enumerate(heard["sse"]) for u, _ in got})
    bench.expect("event-stream clients that failed", 0, len(heard["failed"]))
    errors = [line for line in console_log.read_text(errors="replace").splitlines()
              if " ERROR " in line or line.startswith("Traceback")]
    bench.expect("console log errors", 0, len(errors))
    # every call waited for its card (the pages were open before the first call)
    bench.expect("calls that waited for their card on an open page", len(calls_made),
                 int(sum(waited.values())))
    bench.report(f"console: {pages} pages + {clients - pages} event-stream clients, "
                 f"{int(RATE_PER_S * hold_s)} calls in progress",
                 {**_figures(calls_made, results, cards, heard, int(RATE_PER_S * hold_s)),
                  "calls whose card a page reported shown within the engine's 150 ms wait":
                      f"{int(waited['in_time'])} of {int(sum(waited.values()))}"})


async def _pages_known(engine: Engine, timeout_s: float = 60.0) -> None:
    """Until the engine knows the pages are open (it reads that each second)."""
    assert engine.context is not None and engine.context.screens is not None
    deadline = time.monotonic() + timeout_s
    while not engine.context.screens.scopes:
        if time.monotonic() > deadline:
            raise RuntimeError("the engine never learnt that the live pages are open")
        await asyncio.sleep(0.1)


def _province(db_url: str) -> str:
    from sqlalchemy import select

    from dispatch.db import make_sync_engine
    from dispatch.models import Elder

    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(select(Elder.province_code).limit(1)).scalar_one())
    finally:
        engine.dispose()


def _figures(calls: list[Timing], results: list[dict[str, Any]],
             cards: list[list[tuple[str, float, float]]], heard: dict[str, Any],
             steady_from: int) -> dict[str, Any]:
    steady = {c.uniqueid: c for c in calls[steady_from:]}
    ringing = {r["uniqueid"]: r["queue"]["joined_at"] for r in results if r.get("queue")}
    to_card, early, lead, entry_to_card = [], 0, [], []
    for seen in cards:
        for uid, at_ms, entry_ms in seen:
            call = steady.get(uid)
            if call is None or call.queue_real is None or uid not in ringing:
                continue
            to_card.append(at_ms - call.queue_real * 1000)
            early += at_ms <= (call.queue_real * 1000)  # the phones ring from the join
            lead.append(call.queue_real * 1000 - entry_ms)
            entry_to_card.append(at_ms - entry_ms)
    to_queue = [c.answered_to_queue_ms for c in steady.values()
                if c.answered_to_queue_ms is not None]
    fan_out = [ms for got in heard["sse"] for uid, ms in got if uid in steady]
    raw = [ms for uid, ms in heard["raw"] if uid in steady]
    return {
        "calls measured": len(steady),
        "answer -> queue p50 / p99 ms (the wait for the card included)":
            f"{_ms(to_queue, 50)} / {_ms(to_queue, 99)}",
        "baseline: stream -> raw XREAD p50 / p99 ms": f"{_ms(raw, 50)} / {_ms(raw, 99)}",
        "stream -> console client p50 / p99 ms": f"{_ms(fan_out, 50)} / {_ms(fan_out, 99)}",
        "screen pop's stream entry -> queue entry (its head start) p50 / p99 ms":
            f"{_ms(lead, 50)} / {_ms(lead, 99)}",
        "stream entry -> card in DOM p50 / p99 ms":
            f"{_ms(entry_to_card, 50)} / {_ms(entry_to_card, 99)}",
        "queue entry -> card in DOM p50 ms": _ms(to_card, 50),
        "queue entry -> card in DOM p99 ms": _ms(to_card, 99),
        "cards shown by the time the phone rang": f"{100 * early / max(1, len(to_card)):.1f} %",
        "goal": "p99 < 300 ms; the card no later than the ringing in 95 % of calls",
    }


def run(bench: Bench, calls: int = CALLS, hold_s: float = HOLD_REAL_S, pages: int = PAGES,
        clients: int = CLIENTS) -> None:
    asyncio.run(_run(bench, calls, hold_s, pages, clients))


if __name__ == "__main__":
    standalone("console", run)
