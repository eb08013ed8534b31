"""The operators' live screen in a real Chromium, with the console, the engine and the
simulator over real TCP: a handset emergency's card with the elder's record appears before
an operator's seat answers; the seat that answers keeps it and it leaves the others'
screens; the worklist sounds until acknowledged and the operator closes the alarm with a
disposition; a page whose console restarts misses no emergency that came meanwhile; a
worklist caller is called back from the operator's own seat; bad input to the live screen
is refused with nothing written, and a screen whose session ends says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from dispatch.account_store import disable_account
from dispatch.accounts import Role
from dispatch.db import async_sessionmaker_for, make_async_engine, make_sync_engine
from dispatch.models import AuditEntry, Call, Elder, ElderPhone, OrderEvent, QueueCall, WorkOrder
from dispatch.orders import ServiceType, create_order, order_no_for
from dispatch.phones import national
from dispatch.quality import callback_number
from dispatch.regions import Place
from ivr.config import Settings
from ivr.console.server import console_app
from ivr.metrics import REGISTRY
from ivr.pop_delivery import seen_key
from tests.browser import ConsoleServer, account, async_chromium, async_screenshot, async_sign_in
from tests.callstack import CallStack, open_stack, until

SPEED = 5.0
SECRET = "s" * 40  # sessions survive the console's restart
# op1 answers after 20 s (4 s of real time): long before the overflow (30 s) moves the call
OP1 = [{"name": "op1", "answer_delay_s": 20.0, "talk_s": 3600.0, "available": True}]
NOBODY = [{"name": "op1", "answer_delay_s": 20.0, "talk_s": 5.0, "available": False}]
TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Handset:
    line: str
    elder_id: int
    name: str
    address: str
    health_notes: str
    county: str
    province: str


def handsets(stack: CallStack) -> list[Handset]:
    engine = make_sync_engine(stack.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(ElderPhone.number_e164, Elder.id, Elder.name, Elder.address,
                       Elder.health_notes, Elder.county_code, Elder.province_code)
                .join(Elder, Elder.id == ElderPhone.elder_id)
                .where(ElderPhone.number_e164.in_(stack.numbers["handsets"]))).all()
    finally:
        engine.dispose()
    return [Handset(*row) for row in rows]


def console_settings(stack: CallStack, secret: str = SECRET, account_check_s: float = 15.0
                     ) -> Settings:
    settings = stack.settings.model_copy(deep=True)
    settings.console.secret_key = secret
    settings.console.account_check_s = account_check_s
    return settings


def start_console(stack: CallStack, port: int = 0, replay_s: int = 600,
                  settings: Settings | None = None) -> ConsoleServer:
    assert stack.engine is not None and stack.engine.redis is not None
    socket_file = stack.engine.redis.embedded.socket_file
    return ConsoleServer(console_app(settings or console_settings(stack), socket_file,
                                     replay_s=replay_s), port)


@contextlib.asynccontextmanager
async def signed_in(browser: Any, url: str, name: str) -> AsyncIterator[Any]:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await async_sign_in(page, url, name)
        await page.goto(f"{url}/live")
        await page.wait_for_selector("#feed-state[data-state=live]", timeout=TIMEOUT_MS)
        await page.wait_for_selector("#worklist[data-loaded=yes]", timeout=TIMEOUT_MS)
        yield page
    finally:
        await context.close()


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[CallStack]:
    async for stack in open_stack("embedded", tmp_path, elders=60, speed=SPEED, ami=True):
        yield stack


HOSTILE = '<script>window.__xss = 1</script>朝阳路1号<img src=x onerror="window.__xss = 2">'


def set_address(stack: CallStack, elder_id: int, address: str) -> None:
    engine = make_sync_engine(stack.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(update(Elder).where(Elder.id == elder_id).values(address=address))
    finally:
        engine.dispose()


async def test_a_handset_emergency_pops_up_is_taken_and_closed(stack: CallStack) -> None:
    elder = handsets(stack)[0]
    set_address(stack, elder.elder_id, HOSTILE)  # shown as text, never run
    for name, seat in (("li", "op1"), ("zhao", "op2")):
        await asyncio.to_thread(account, stack.db_url, name, Role.OPERATOR,
                                f"county:{elder.county}", seat)
    console = start_console(stack)
    try:
        async with async_chromium() as browser, \
                signed_in(browser, console.url, "li") as li, \
                signed_in(browser, console.url, "zhao") as zhao:
            await stack.sim.request("operators", operators=OP1)
            # the engine knows a page of the county is open: the call waits for its card
            screens = stack.engine.context.screens
            await until(lambda: screens.watched(Place(county_code=elder.county)),
                        "the county's open page known to the engine")
            pops_shown = shown_count()
            call = asyncio.create_task(stack.call(national(elder.line)))
            card = f".card:has(h3:text-is('{elder.name}'))"
            await li.wait_for_selector(card, timeout=TIMEOUT_MS)
            # the elder's record is on the card while op1's phone still rings
            uniqueid = await li.get_attribute(card, "data-uniqueid")
            said = seen_key(stack.settings.redis.key_prefix, uniqueid)
            assert await until(lambda: stack.engine.redis.client.get(said),
                               "the console's word that the card reached a page") == b"1"
            await until(lambda: shown_count() == pops_shown + 1, "the engine's wait counted")
            # the wait ticks on the card on screen
            await li.wait_for_function(
                """(id) => { const w = document.querySelector(
                                `.card[data-uniqueid="${id}"] .wait`);
                             return w !== null && w.textContent !== "0:00"; }""",
                arg=uniqueid, timeout=TIMEOUT_MS)
            waits = stack.rows(select(QueueCall.answered_at)
                            .where(QueueCall.uniqueid == uniqueid))
            assert all(answered is None for (answered,) in waits)
            assert await li.get_attribute(card, "class") == "card emergency"
            text = await li.inner_text(card)
            assert HOSTILE in text and "Emergency: one-key handset" in text
            assert await li.evaluate("window.__xss") is None
            if elder.health_notes:
                assert elder.health_notes in text
            await zhao.wait_for_selector(card, timeout=TIMEOUT_MS)
            # the new emergency sounds until someone acknowledges it
            row = "#worklist tr.unattended[data-order-no]"
            await li.wait_for_selector(row, timeout=TIMEOUT_MS)
            order_no = await li.get_attribute(row, "data-order-no")
            assert HOSTILE in await li.inner_text(row)
            # the order is stored beside the queued call: its number reaches the card
            await li.wait_for_selector(f"{card}[data-order-no='{order_no}']",
                                       timeout=TIMEOUT_MS)
            assert order_no in await li.inner_text(card)
            await li.wait_for_selector("body[data-alarm=on]", timeout=TIMEOUT_MS)
            await li.wait_for_selector("body[data-beeps]", timeout=TIMEOUT_MS)
            await async_screenshot(li, "console-screen-pop")
            await zhao.click(f"tr[data-order-no='{order_no}'] button.ack")
            await li.wait_for_selector("body[data-alarm=off]", timeout=TIMEOUT_MS)

            # op1 answers: li's card becomes hers, zhao's goes
            await li.wait_for_selector(f"{card}.mine", timeout=TIMEOUT_MS)
            await zhao.wait_for_selector(card, state="detached", timeout=TIMEOUT_MS)
            shown = int(await li.get_attribute(card, "data-shown-at") or 0)
            taken = int(await li.get_attribute(card, "data-answered-at") or 0)
            assert 0 < shown < taken
            answered = f"#worklist tr.awaiting_disposition[data-order-no='{order_no}']"
            await li.wait_for_selector(answered, timeout=TIMEOUT_MS)
            await async_screenshot(li, "console-worklist")
            await li.select_option(f"{answered} select", "real_emergency")
            await li.fill(f"{answered} input[name=note]", "fell in the kitchen; 120 sent")
            await li.click(f"{answered} button[type=submit]")
            await li.wait_for_selector(f"#worklist tr[data-order-no='{order_no}']",
                                       state="detached", timeout=TIMEOUT_MS)
            await li.wait_for_selector(card, state="detached", timeout=TIMEOUT_MS)
            await refusals(li, await foreign_emergency(stack, elder.county))
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
    finally:
        await asyncio.to_thread(console.stop)
    status, = stack.rows(select(WorkOrder.status).where(WorkOrder.order_no == order_no))
    assert status == ("completed",)
    kinds = {kind: detail for kind, detail in stack.rows(
        select(OrderEvent.kind, OrderEvent.detail)
        .join(WorkOrder, WorkOrder.id == OrderEvent.order_id)
        .where(WorkOrder.order_no == order_no))}
    assert kinds["operator_acknowledged"]["by"] == "zhao"
    assert kinds["alarm_closed"] == {"disposition": "real_emergency", "closed_by": "li",
                                     "note": "fell in the kitchen; 120 sent"}
    audited = {(who, action) for who, action in stack.rows(
        select(AuditEntry.account_name, AuditEntry.action)
        .where(AuditEntry.target == order_no))}
    assert audited == {("zhao", "alarm_acknowledged"), ("li", "alarm_closed")}
    refused = stack.rows(select(AuditEntry.account_name, AuditEntry.detail)
                      .where(AuditEntry.action == "order_refused"))
    assert refused == [("li", {"exists_elsewhere": True})]


def shown_count() -> float:
    """Calls that waited for their card on an open page, this process."""
    return sum(REGISTRY.get_sample_value("hotline_screen_pops_shown_total", {"outcome": outcome})
               or 0.0 for outcome in ("in_time", "late"))


async def foreign_emergency(stack: CallStack, county: str) -> str:
    """An open emergency of an elder outside ``county``."""
    elder_id, = next(row for row in stack.rows(select(Elder.id).where(
        Elder.county_code != county, Elder.county_code.is_not(None))))
    return await open_emergency(stack, elder_id)


async def open_emergency(stack: CallStack, elder_id: int) -> str:
    """A new handset emergency order of ``elder_id``: its number."""
    engine = make_async_engine(stack.db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            order = await create_order(session, elder_id=elder_id,
                                       service=ServiceType.EMERGENCY, source="handset",
                                       call_uniqueid=None, requested_by="elder",
                                       at=datetime.now(UTC))
    finally:
        await engine.dispose()
    assert order.order_no is not None
    return order.order_no


async def refusals(page: Any, foreign: str) -> None:
    """Another county's alarm, a made-up disposition, a post without its CSRF token."""
    async def post(url: str, fields: dict[str, str], token: bool = True) -> tuple[int, str]:
        return tuple(await page.evaluate(
            """async ([url, fields, token]) => {
                 const reply = token ? await window.hotline.post(url, fields)
                   : await fetch(url, {method: "POST", body: new URLSearchParams(fields)});
                 return [reply.status, await reply.text()];
               }""", [url, fields, token]))

    status, body = await post("/live/worklist/ack", {"order_no": foreign})
    assert status == 404 and "in your region" in body
    status, body = await post("/live/worklist/close", {"order_no": foreign,
                                                        "disposition": "prank", "note": ""})
    assert status == 400 and "disposition" in body
    status, _ = await post("/live/worklist/ack", {"order_no": foreign}, token=False)
    assert status == 403


async def test_a_page_misses_no_emergency_while_its_console_restarts(stack: CallStack) -> None:
    first, second = handsets(stack)[:2]
    await asyncio.to_thread(account, stack.db_url, "sun", Role.OPERATOR,
                            f"province:{first.province}", "op3")
    await stack.sim.request("operators", operators=NOBODY)
    console = start_console(stack, replay_s=0)  # only the Last-Event-ID brings back the gap
    port = console.port
    try:
        async with async_chromium() as browser, signed_in(browser, console.url, "sun") as page:
            calls = [asyncio.create_task(stack.call(national(first.line)))]
            await page.wait_for_selector(f".card:has(h3:text-is('{first.name}'))",
                                         timeout=TIMEOUT_MS)
            await asyncio.to_thread(console.stop)
            await page.wait_for_selector("#feed-state[data-state=reconnecting]",
                                         timeout=TIMEOUT_MS)
            calls.append(asyncio.create_task(stack.call(national(second.line))))
            assert stack.engine is not None and stack.engine.context is not None
            stream = stack.engine.context.live.stream_key
            client = stack.engine.redis.client if stack.engine.redis else None
            assert client is not None

            async def popped() -> bool:
                entries = await client.xrange(stream)
                return any(fields[b"type"] == b"screen_pop" and second.name.encode()
                           in fields[b"data"] for _id, fields in entries)

            await until(popped, "the second emergency's screen pop while the console is down")
            console = start_console(stack, port, replay_s=0)
            await page.wait_for_selector(f".card:has(h3:text-is('{second.name}'))",
                                         timeout=TIMEOUT_MS)
            await page.wait_for_selector("#feed-state[data-state=live]", timeout=TIMEOUT_MS)
            assert await page.locator(f".card:has(h3:text-is('{first.name}'))").count() == 1
            rows = page.locator("#worklist tr.unattended[data-order-no]")
            await until(lambda: rows.count(), "the worklist")
            for call in calls:
                call.cancel()
            await asyncio.gather(call, return_exceptions=True)
    finally:
        await asyncio.to_thread(console.stop)


def hung_up_before_choosing(stack: CallStack, elder: Handset) -> str:
    """A call of ``elder`` that ended before they chose anything: a worklist caller to call
    back. Its uniqueid."""
    uniqueid = "1700000000.4242"
    engine = make_sync_engine(stack.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(Call).values(
                uniqueid=uniqueid, channel="PJSIP/trunk-00000001", direction="inbound",
                caller_number=elder.line, identity_status="known", elder_id=elder.elder_id,
                started_at=datetime.now(UTC), ended_at=datetime.now(UTC),
                disposition="abandoned", reason="callback_needed"))
    finally:
        engine.dispose()
    return uniqueid


async def test_a_worklist_caller_is_called_back_from_the_operators_seat(
        stack: CallStack) -> None:
    elder = handsets(stack)[0]
    hung_up_before_choosing(stack, elder)
    await asyncio.to_thread(account, stack.db_url, "qian", Role.OPERATOR,
                            f"county:{elder.county}", "operator1")
    await stack.sim.request("register", endpoint="operator1", contact="192.168.1.21:5060",
                            source="192.168.1.21:5060")
    console = start_console(stack)
    try:
        async with async_chromium() as browser, \
                signed_in(browser, console.url, "qian") as page:
            button = "#worklist tr.call_back button.call-back"
            await page.wait_for_selector(button, timeout=TIMEOUT_MS)
            await page.click(button)
            # the page says so once the seat answered (its softphone rang first)
            await page.wait_for_selector(f"{button}[title*='answered']", timeout=TIMEOUT_MS)

            async def dialled() -> list[tuple[str, str]]:
                records = (await stack.sim.request("originated"))["originated"]
                return [(d["dialstring"], d["status"]) for r in records
                        if r["channel"] == "PJSIP/operator1" for d in r["dial"]
                        if d["answered_at"] is not None]

            # the seat rang and answered first; then it dialled the caller through the check
            assert await until(dialled, "the seat's call to the elder") == [
                (f"PJSIP/{national(elder.line)}@trunk", "ANSWER")]
    finally:
        await asyncio.to_thread(console.stop)
    audited = stack.rows(select(AuditEntry.account_name, AuditEntry.detail)
                      .where(AuditEntry.action == "call_back"))
    assert [(who, detail["seat"], detail["outcome"]) for who, detail in audited] == [
        ("qian", "operator1", "rung")]


async def stream_opening(url: str, cookies: list[dict[str, Any]], last_event_id: str) -> str:
    """The first lines of ``/live/events`` asked for with ``last_event_id``, up to its
    status event (the stream stays open; this reads its opening and hangs up)."""
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in cookies)
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write((f"GET /live/events HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
                      f"Last-Event-ID: {last_event_id}\r\nAccept: text/event-stream\r\n\r\n"
                      ).encode("latin-1"))
        await writer.drain()
        opening = b""
        while b"event: status" not in opening:
            chunk = await asyncio.wait_for(reader.read(4096), TIMEOUT_MS / 1000)
            assert chunk, f"the stream ended: {opening!r}"
            opening += chunk
        return opening.decode("utf-8", "replace")
    finally:
        writer.close()


async def test_bad_input_to_the_live_screen_is_refused_and_an_ended_session_says_so(
        stack: CallStack) -> None:
    elder = handsets(stack)[0]
    order_no = await open_emergency(stack, elder.elder_id)
    for name in ("wu", "zheng"):
        await asyncio.to_thread(account, stack.db_url, name, Role.OPERATOR,
                                f"county:{elder.county}", None)
    console = start_console(stack, settings=console_settings(stack, account_check_s=0.5))
    try:
        async with async_chromium() as browser, \
                signed_in(browser, console.url, "wu") as wu, \
                signed_in(browser, console.url, "zheng") as zheng:
            await wu.wait_for_selector(f"#worklist tr[data-order-no='{order_no}']",
                                       timeout=TIMEOUT_MS)

            async def post(url: str, fields: dict[str, str]) -> tuple[int, str]:
                return tuple(await wu.evaluate(
                    """async ([url, fields]) => {
                         const reply = await window.hotline.post(url, fields);
                         return [reply.status, await reply.text()];
                       }""", [url, fields]))

            refused = [
                ("/live/worklist/ack", {}, 400, "order_no"),
                ("/live/worklist/ack", {"order_no": "<b>1</b>"}, 400,
                 "not an order number"),
                ("/live/worklist/ack", {"order_no": order_no[:-1] + "\r\nAction: x"}, 400,
                 "order_no"),
                ("/live/worklist/ack", {"order_no": "9" * 10_000}, 400, "order_no"),
                ("/live/worklist/close", {"order_no": order_no, "note": "x"}, 400,
                 "disposition"),
                ("/live/worklist/close", {"order_no": order_no, "disposition": "test",
                                          "note": "长" * 501}, 400, "at most 500"),
                ("/live/worklist/close", {"order_no": order_no, "disposition": "test",
                                          "note": "a\x1b[2Jb"}, 400, "control characters"),
                ("/live/shown", {}, 400, "uniqueids"),
                ("/live/shown", {"uniqueids": "1733390000.7,a b"}, 400, "call ids"),
                ("/live/shown", {"uniqueids": "1.1\r\nAction: x"}, 400, "uniqueids"),
                ("/live/shown", {"uniqueids": ",".join(["1.1"] * 201)}, 400, "up to 200"),
            ]
            for url, fields, status, reason in refused:
                got, body = await post(url, fields)
                assert (got, reason in body) == (status, True), (url, fields, body)
            unknown = order_no_for(987_654)  # well formed, and no such order
            got, body = await post("/live/worklist/ack", {"order_no": unknown})
            assert got == 404 and "in your region" in body
            # a stream asked for with a made-up Last-Event-ID starts live, from now
            opening = await stream_opening(console.url, await wu.context.cookies(),
                                           "9" * 60 + "-x<script>")
            assert "HTTP/1.1 200" in opening and '"state": "live"' in opening

            # wu's account is disabled: the open screen says so and stops
            engine = make_async_engine(stack.db_url, pool_size=1)
            try:
                async with async_sessionmaker_for(engine)() as session:
                    assert await disable_account(session, "wu", datetime.now(UTC))
            finally:
                await engine.dispose()
            await wu.wait_for_selector("#feed-state[data-state=signed_out]",
                                       timeout=TIMEOUT_MS)
            assert await wu.get_attribute("#feed-state a", "href") == "/live"

            # the console restarts with another key: zheng's session is gone, and the page
            # that tries to reconnect says so instead of "reconnecting" for ever
            port = console.port
            await asyncio.to_thread(console.stop)
            await zheng.wait_for_selector("#feed-state[data-state=reconnecting]",
                                          timeout=TIMEOUT_MS)
            console = start_console(stack, port, settings=console_settings(
                stack, secret="t" * 40))
            await zheng.wait_for_selector("#feed-state[data-state=signed_out]",
                                          timeout=TIMEOUT_MS)
    finally:
        await asyncio.to_thread(console.stop)
    status, = stack.rows(select(WorkOrder.status).where(WorkOrder.order_no == order_no))
    assert status == ("new",)
    written = stack.rows(select(OrderEvent.kind).join(
        WorkOrder, WorkOrder.id == OrderEvent.order_id).where(
        WorkOrder.order_no == order_no, OrderEvent.kind.in_(
            ["operator_acknowledged", "alarm_closed"])))
    assert written == []
    actions = {action for (action,) in stack.rows(select(AuditEntry.action).where(
        AuditEntry.account_name == "wu"))}
    assert actions & {"alarm_acknowledged", "alarm_closed"} == set()


async def test_a_long_worklist_shows_its_first_rows_and_the_rest_on_request(
        stack: CallStack) -> None:
    """105 emergencies nobody answered: the page builds the first 100 rows in order, says
    how many follow, and builds them all on "Show all"; the banner names the first ten."""
    elder = handsets(stack)[0]
    engine = make_async_engine(stack.db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            # the engine calls the elder back while the page loads: nobody answers, so the
            # emergencies stay unattended
            number = await callback_number(session, elder.elder_id)
            assert number is not None
            await stack.sim.request("phones", phones={national(number): {"answer": "noanswer"}})
            for _ in range(105):
                await create_order(session, elder_id=elder.elder_id,
                                   service=ServiceType.EMERGENCY, source="handset",
                                   call_uniqueid=None, requested_by="elder",
                                   at=datetime.now(UTC))
    finally:
        await engine.dispose()
    await asyncio.to_thread(account, stack.db_url, "li", Role.OPERATOR,
                            f"county:{elder.county}", "op1")
    console = start_console(stack)
    try:
        async with async_chromium() as browser, signed_in(browser, console.url, "li") as li:
            rows = li.locator("#worklist tr.unattended[data-order-no]")
            assert await rows.count() == 100
            more = li.locator("#worklist tr.more")
            assert "and 5 more" in await more.inner_text()
            assert "and 95 more" in await li.locator("#alarm-text").inner_text()
            await more.locator("button").click()

            async def every_row() -> bool:
                return await rows.count() == 105

            await until(every_row, "every row built")
            assert await li.locator("#worklist tr.more").count() == 0
    finally:
        console.stop()
