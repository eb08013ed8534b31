"""The family alert's key handling, against a scripted Asterisk in memory (tests/agi_memory.py):
key 1 acknowledges (on the timeline, and shared through Redis with the escalation waiting for
it), a wrong key or silence twice does not, nor does a hang-up. No timing is involved; the same
calls over AMI Originate and real TCP are in test_family_escalation.py."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from dispatch.escalations import timeline
from ivr.context import EngineContext
from ivr.flows.family_alert import FamilyAlertFlow
from tests.agi_memory import CLOSE, DEAD, TIMEOUT, ScriptedAsterisk, Step, step
from tests.flow_context import open_flow_context
from tests.vendor_world import add_elder, add_order

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALERT = "GET DATA hotline/zh/family_alert 10000 1"
THANKS = step('STREAM FILE hotline/zh/family_thanks ""', "200 result=0 endpos=24000")
_contacts = itertools.count(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ctx(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineContext]:
    async for opened in open_flow_context(tmp_path_factory.mktemp("family-alert-flow")):
        yield opened


async def emergency(ctx: EngineContext) -> tuple[int, int]:
    """(order id, contact id) of an order whose family contact is being called."""
    async with ctx.writing() as session:
        order = await add_order(session, await add_elder(session, created=ctx.now()), ctx.now())
    return order.id, next(_contacts)


def called(order_id: int, contact_id: int) -> list[Step]:
    return [step("GET VARIABLE HOTLINE_ORDER_ID", f"200 result=1 ({order_id})"),
            step("GET VARIABLE HOTLINE_CONTACT_ID", f"200 result=1 ({contact_id})")]


async def run_alert(ctx: EngineContext, order_id: int, contact_id: int, script: list[Step]
                    ) -> tuple[list[str], bool]:
    """The flow on one answered call: the family events on the order's timeline, and the
    answer the escalation reads back."""
    asterisk = ScriptedAsterisk([*called(order_id, contact_id), *script])
    await asterisk.serve(FamilyAlertFlow(ctx), "family_alert", callerid="12349")
    async with ctx.sessions() as session:
        kinds = [kind for kind, detail in await timeline(session, order_id)
                 if detail.get("contact_id") == contact_id]
    return kinds, await ctx.acks.wait(order_id, contact_id, 0.0)


@pytest.mark.parametrize("script", [
    [step(ALERT, "200 result=1"), THANKS],
    [step(ALERT, TIMEOUT), step(ALERT, "200 result=1 (timeout)"), THANKS],
    [step(ALERT, "200 result=1"), step('STREAM FILE hotline/zh/family_thanks ""', CLOSE)],
], ids=["at once", "the second time", "hung up during the thanks"])
async def test_key_1_acknowledges(ctx: EngineContext, script: list[Step]) -> None:
    order_id, contact_id = await emergency(ctx)
    assert await run_alert(ctx, order_id, contact_id, script) == (["family_acknowledged"], True)


@pytest.mark.parametrize("script", [
    [step(ALERT, TIMEOUT), step(ALERT, TIMEOUT)],
    [step(ALERT, "200 result=2"), step(ALERT, "200 result=#")],
    [step(ALERT, "200 result=-1")],
    [step(ALERT, "HANGUP", DEAD)],
    [step(ALERT, TIMEOUT), step(ALERT, CLOSE)],
], ids=["silence twice", "wrong keys", "hung up", "dead channel", "socket closed"])
async def test_no_key_1_is_recorded_as_no_key(ctx: EngineContext, script: list[Step]) -> None:
    order_id, contact_id = await emergency(ctx)
    assert await run_alert(ctx, order_id, contact_id, script) == (["family_no_key"], False)


async def test_a_call_without_its_order_or_contact_records_nothing(ctx: EngineContext) -> None:
    asterisk = ScriptedAsterisk([step("GET VARIABLE HOTLINE_ORDER_ID", "200 result=0"),
                                 step("GET VARIABLE HOTLINE_CONTACT_ID", "200 result=1 (x7)")])
    await asterisk.serve(FamilyAlertFlow(ctx), "family_alert", callerid="12349")
