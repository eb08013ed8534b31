"""The vendor offer's key outcomes, against a scripted Asterisk in memory (tests/agi_memory.py):
accept, decline, silence, a wrong key, the repeat key, a hang-up and a dead channel mid-offer,
each recorded on the attempt. No timing is involved; the same offers over AMI Originate and
real TCP with the simulator are in test_dispatch_calls.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from dispatch import outbound
from dispatch.models import CallPurpose, OutboundState, WorkOrder
from ivr.context import EngineContext
from ivr.flows.vendor_offer import VendorOfferFlow
from tests.agi_memory import ANY, CLOSE, DEAD, TIMEOUT, ScriptedAsterisk, Step, step
from tests.flow_context import dialled_attempt, open_flow_context

pytestmark = pytest.mark.asyncio(loop_scope="module")

ESCAPE = "129"  # accept, decline, hear it again
# the offer in Mandarin: meal, 城关区, within thirty minutes; the last prompt listens
OFFER = [f"hotline/zh/{name}" for name in (
    "offer_intro", "service_meal", "offer_district", "district_620102", "offer_within",
    "digit_3", "ten", "offer_minutes")]
KEYS = "GET DATA hotline/zh/offer_keys 8000 1"
PLAYED = "200 result=0 endpos=16000"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ctx(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineContext]:
    async for opened in open_flow_context(tmp_path_factory.mktemp("vendor-offer-flow")):
        yield opened


async def dialled_offer(ctx: EngineContext) -> outbound.Attempt:
    return await dialled_attempt(ctx, CallPurpose.VENDOR_OFFER)


def answered(attempt: outbound.Attempt) -> Step:
    return step("GET VARIABLE HOTLINE_ATTEMPT_ID", f"200 result=1 ({attempt.id})")


def offer(*last_reply: str) -> list[Step]:
    """The offer heard in full, its last prompt answered with ``last_reply``."""
    return [*(step(f"STREAM FILE {path} {ESCAPE}", PLAYED) for path in OFFER),
            step(KEYS, *last_reply)]


def said(name: str) -> Step:
    return step(f'STREAM FILE hotline/zh/{name} ""', PLAYED)


def accepted_read_back() -> list[Step]:
    return [said("offer_accepted"),
            *(step(f'STREAM FILE {ANY} ""', PLAYED) for _ in range(8)),
            said("offer_accepted_end")]


async def run_offer(ctx: EngineContext, attempt: outbound.Attempt, script: list[Step]
                    ) -> tuple[ScriptedAsterisk, outbound.Attempt]:
    """The flow on one answered call; the scripted Asterisk and the attempt as stored after."""
    asterisk = ScriptedAsterisk(script)
    await VendorOfferFlow(ctx)(await asterisk.session("vendor_offer", callerid="12349"))
    asterisk.check_done()
    async with ctx.sessions() as session:
        stored = await outbound.get_attempt(session, attempt.id)
    assert stored is not None and stored.state is OutboundState.DONE
    return asterisk, stored


async def test_key_1_during_the_intro_accepts_and_reads_the_order_number_back(
        ctx: EngineContext) -> None:
    attempt = await dialled_offer(ctx)
    asterisk, stored = await run_offer(ctx, attempt, [
        answered(attempt), step(f"STREAM FILE {OFFER[0]} {ESCAPE}", "200 result=49 endpos=3000"),
        *accepted_read_back()])
    assert stored.outcome == "accepted"
    async with ctx.sessions() as session:
        order = await session.get(WorkOrder, attempt.order_id)
    assert order is not None and order.vendor_id == attempt.vendor_id
    assert order.status.value == "accepted"
    digits = [c.split()[2].removeprefix("hotline/zh/digit_") for c in asterisk.sent[-9:-1]]
    assert "".join(digits) == order.order_no


async def test_key_2_declines(ctx: EngineContext) -> None:
    attempt = await dialled_offer(ctx)
    _, stored = await run_offer(ctx, attempt, [answered(attempt), *offer("200 result=2"),
                                               said("offer_declined")])
    assert stored.outcome == "declined"


async def test_silence_in_both_rounds_is_no_key(ctx: EngineContext) -> None:
    attempt = await dialled_offer(ctx)
    _, stored = await run_offer(ctx, attempt, [answered(attempt), *offer(TIMEOUT),
                                               said("no_input"), *offer(TIMEOUT),
                                               said("offer_no_key")])
    assert stored.outcome == "no_key"


async def test_a_wrong_key_uses_a_round_with_a_notice(ctx: EngineContext) -> None:
    attempt = await dialled_offer(ctx)
    _, stored = await run_offer(ctx, attempt, [answered(attempt), *offer("200 result=5"),
                                               said("invalid_input"), *offer("200 result=1"),
                                               *accepted_read_back()])
    assert stored.outcome == "accepted"


async def test_nine_repeats_the_offer_without_using_a_round(ctx: EngineContext) -> None:
    attempt = await dialled_offer(ctx)
    _, stored = await run_offer(ctx, attempt, [
        answered(attempt), *offer("200 result=9"),
        step(f"STREAM FILE {OFFER[0]} {ESCAPE}", "200 result=57 endpos=2000"),
        *offer("200 result=9 (timeout)"), *offer(TIMEOUT), said("no_input"),
        *offer("200 result=2"), said("offer_declined")])
    assert stored.outcome == "declined"


@pytest.mark.parametrize(("reply", "what"), [
    ((KEYS, "200 result=-1"), "GET DATA returns -1"),
    ((KEYS, "HANGUP", DEAD), "a HANGUP line, then 511"),
    ((KEYS, CLOSE), "the socket closed"),
])
async def test_a_hangup_at_the_keys_is_recorded_as_hangup(
        ctx: EngineContext, reply: tuple[str, ...], what: str) -> None:
    attempt = await dialled_offer(ctx)
    _, stored = await run_offer(ctx, attempt, [answered(attempt), *offer()[:-1], step(*reply)])
    assert stored.outcome == "hangup", what


async def test_a_hangup_while_a_prompt_plays_is_told_from_a_missing_prompt(
        ctx: EngineContext) -> None:
    """STREAM FILE's -1 means a missing prompt or a hang-up: the channel's status decides."""
    attempt = await dialled_offer(ctx)
    _, stored = await run_offer(ctx, attempt, [
        answered(attempt), step(f"STREAM FILE {OFFER[0]} {ESCAPE}", "200 result=-1 endpos=0"),
        step("CHANNEL STATUS", DEAD)])
    assert stored.outcome == "hangup"


async def test_a_call_without_a_known_attempt_hears_the_offer_withdrawn(
        ctx: EngineContext) -> None:
    asterisk = ScriptedAsterisk([step("GET VARIABLE HOTLINE_ATTEMPT_ID", "200 result=0"),
                                 said("offer_withdrawn")])
    await VendorOfferFlow(ctx)(await asterisk.session("vendor_offer", callerid="12349"))
    asterisk.check_done()


async def test_an_attempt_already_settled_is_not_offered_again(ctx: EngineContext) -> None:
    attempt = await dialled_offer(ctx)
    _, stored = await run_offer(ctx, attempt, [answered(attempt), *offer("200 result=2"),
                                               said("offer_declined")])
    _, again = await run_offer(ctx, attempt, [answered(attempt), said("offer_withdrawn")])
    assert (stored.outcome, again.outcome) == ("declined", "declined")
