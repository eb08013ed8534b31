"""An order entered by hand in the console, in a real Chromium, for an unknown caller the
operator queue put through, is dispatched like any other: the engine (over real TCP to the
simulator) offers it to a vendor, who accepts."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from dispatch.accounts import Role
from dispatch.db import make_sync_engine
from dispatch.models import Elder, OutboundCall
from dispatch.phones import national
from ivr.console.app import create_app
from tests.browser import (
    ConsoleServer,
    async_account,
    async_chromium,
    async_screenshot,
    async_sign_in,
)
from tests.callstack import open_stack
from tests.dispatch_world import order_row, rank_vendors

ACCEPT = {"answer": "answer", "ring_s": 2.0, "script": [{"press": "1", "delay": 3.0}]}
OVERRIDES = {"dial": {"ring_timeout_s": 20.0},
             "dispatch": {"reconcile_s": 0.5, "rank_refresh_s": 1e9}}


def _an_elder(db_url: str) -> tuple[str, str]:
    """(name, county code) of an elder whose name is theirs alone."""
    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Elder.name, Elder.county_code).order_by(Elder.id)).all()
    finally:
        engine.dispose()
    names = [name for name, _ in rows]
    return next((name, county) for name, county in rows if names.count(name) == 1)


async def test_an_order_entered_by_hand_for_an_unknown_caller_is_offered_and_accepted(
        tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=200, ami=True,
                                  engine_overrides=OVERRIDES):
        vendors = rank_vendors(stack.db_url)
        await stack.sim.request("phones", phones={vendors[0].phone: ACCEPT})
        name, county = _an_elder(stack.db_url)
        await async_account(stack.db_url, "zhou", Role.OPERATOR, f"county:{county}", "op1")
        call = await stack.call(national(stack.numbers["unknown"][0]))
        assert call["queue"] is not None  # an unknown caller goes to an operator
        console = ConsoleServer(create_app(stack.settings))
        try:
            async with async_chromium() as browser:
                page = await browser.new_page(viewport={"width": 1200, "height": 800})
                await async_sign_in(page, console.url, "zhou")
                await page.goto(f"{console.url}/orders/new?call={call['uniqueid']}")
                await page.fill("#elder-search input[name=q]", name)
                async with page.expect_navigation():
                    await page.click("#elder-search button")
                await page.select_option("#new-order-form select[name=service]", "meal")
                await page.fill("#new-order-form textarea[name=note]", "来电人为邻居，代老人订餐")
                async with page.expect_navigation():
                    await page.click("#new-order-form button")
                order_no = page.url.rsplit("/", 1)[1]
                order = order_row(stack.db_url, order_no)
                assert (order.source, order.call_uniqueid) == ("operator", call["uniqueid"])
                offers = await stack.poll(
                    select(OutboundCall.vendor_id, OutboundCall.outcome)
                    .where(OutboundCall.order_id == order.id),
                    lambda rows: any(row.outcome == "accepted" for row in rows))
                assert [(row.vendor_id, row.outcome) for row in offers] == [
                    (vendors[0].id, "accepted")]
                await page.reload()
                assert await page.inner_text("#order-status") == "accepted"
                timeline = await page.inner_text("#timeline")
                assert "outbound_vendor_offer" in timeline and "accepted" in timeline
                await async_screenshot(page, "order-dispatched")
        finally:
            console.stop()

