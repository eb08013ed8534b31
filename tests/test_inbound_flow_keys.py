"""The inbound menu's key handling, against a scripted Asterisk in memory (tests/agi_memory.py):
wrong keys, GET DATA timeouts, a hang-up, a dead channel or a closed socket mid-menu. Each
command the flow sends is checked in order; no timing is involved. The same paths over real
TCP with the simulator are in test_inbound_calls.py and test_inbound_failures.py."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import select

from dispatch.models import Call, Elder, ElderPhone, PhoneKind, WorkOrder
from ivr.agi.errors import AgiProtocolError
from ivr.context import EngineContext
from ivr.flows.inbound import InboundFlow
from tests.agi_memory import ANY, CLOSE, DEAD, TIMEOUT, ScriptedAsterisk, Step, step
from tests.flow_context import open_flow_context

pytestmark = pytest.mark.asyncio(loop_scope="module")

_callers = itertools.count(1)
LINKEDID = "1795346825.0"
MENU = "GET DATA hotline/zh/menu_main 8000 1"
INVALID = "GET DATA hotline/zh/invalid_input 5000 1"
NO_INPUT = "GET DATA hotline/zh/no_input 5000 1"
ORDER_NO_DIGITS = 8


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ctx(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineContext]:
    async for opened in open_flow_context(tmp_path_factory.mktemp("inbound-flow")):
        yield opened


async def new_caller(ctx: EngineContext) -> tuple[int, str]:
    """A registered elder (Mandarin menu) with a mobile of their own: (elder id, number)."""
    number = f"1380013{next(_callers):04d}"
    async with ctx.sessions() as session:
        elder = Elder(name="王桂兰", preferred_language="zh", created_at=ctx.now())
        elder.phones.append(ElderPhone(number_e164=f"+86{number}", kind=PhoneKind.MOBILE))
        session.add(elder)
        await session.commit()
        return elder.id, number


def greeting(*reply: str) -> list[Step]:
    return [step("ANSWER", "200 result=0"),
            step("GET VARIABLE CHANNEL(linkedid)", f"200 result=1 ({LINKEDID})"),
            step('STREAM FILE hotline/zh/welcome "012349"', *(reply or ("200 result=0 endpos=0",)))]


def order_announced(service: str) -> list[Step]:
    """Confirmation of ``service`` with key 1, then the order number read back once."""
    played = "200 result=0 endpos=8000"
    return [step(f"GET DATA hotline/zh/confirm_{service} 8000 1", "200 result=1"),
            step(f"SET VARIABLE HOTLINE_ORDER_NO {ANY}", "200 result=1"),
            step("SET VARIABLE HOTLINE_ROUTE done", "200 result=1"),
            step('STREAM FILE hotline/zh/order_number_is ""', played),
            *[step(f'STREAM FILE {ANY} ""', played) for _ in range(ORDER_NO_DIGITS)],
            step("GET DATA hotline/zh/order_repeat 3000 1", TIMEOUT),
            step('STREAM FILE hotline/zh/order_goodbye ""', played)]


def to_operator(reason: str, elder_id: int, priority: int = 0) -> list[Step]:
    return [step(f"SET VARIABLE HOTLINE_REASON {reason}", "200 result=1"),
            step(f"SET VARIABLE HOTLINE_PRIORITY {priority}", "200 result=1"),
            step(f"SET VARIABLE HOTLINE_ELDER_ID {elder_id}", "200 result=1"),
            step("SET VARIABLE HOTLINE_ROUTE operator", "200 result=1"),
            step("SET VARIABLE HOTLINE_LANGUAGE zh", "200 result=1")]


async def run_call(ctx: EngineContext, number: str, script: list[Step]) -> tuple[
        ScriptedAsterisk, Call]:
    """One inbound call through the flow; the scripted Asterisk and the call's record."""
    asterisk = ScriptedAsterisk(script)
    uniqueid = f"1795346825.{number[-4:]}"
    await InboundFlow(ctx)(await asterisk.session("inbound", callerid=number,
                                                  uniqueid=uniqueid))
    asterisk.check_done()
    assert asterisk.released
    async with ctx.sessions() as session:
        call = await session.scalar(select(Call).where(Call.uniqueid == uniqueid))
    assert call is not None
    return asterisk, call


async def order_of(ctx: EngineContext, call: Call) -> WorkOrder:
    async with ctx.sessions() as session:
        order = await session.get(WorkOrder, call.order_id)
    assert order is not None
    return order


def announced_number(asterisk: ScriptedAsterisk) -> tuple[str, str]:
    """(the number set in HOTLINE_ORDER_NO, the digits played after order_number_is)."""
    [set_no] = [c for c in asterisk.sent if c.startswith("SET VARIABLE HOTLINE_ORDER_NO ")]
    start = asterisk.sent.index('STREAM FILE hotline/zh/order_number_is ""') + 1
    digits = asterisk.sent[start:start + ORDER_NO_DIGITS]
    return set_no.rsplit(" ", 1)[1], "".join(c.split()[2].removeprefix("hotline/zh/digit_")
                                             for c in digits)


async def test_a_key_and_its_confirmation_make_an_order_read_back_digit_by_digit(
        ctx: EngineContext) -> None:
    elder_id, number = await new_caller(ctx)
    asterisk, call = await run_call(ctx, number, [*greeting(), step(MENU, "200 result=1"),
                                                  *order_announced("meal")])
    order = await order_of(ctx, call)
    assert (order.elder_id, order.service.value) == (elder_id, "meal")
    assert announced_number(asterisk) == (order.order_no, order.order_no)
    assert (call.disposition, call.reason, call.linkedid) == ("order", "meal", LINKEDID)


async def test_a_key_during_the_greeting_answers_the_menu(ctx: EngineContext) -> None:
    _, number = await new_caller(ctx)
    _, call = await run_call(ctx, number, [*greeting("200 result=51 endpos=4000"),
                                           *order_announced("health")])
    assert (call.disposition, call.reason) == ("order", "health")


@pytest.mark.parametrize("garbage", ["7", "#", "*", "8"])
async def test_a_key_not_in_the_menu_hears_the_short_reprompt_then_may_choose(
        ctx: EngineContext, garbage: str) -> None:
    _, number = await new_caller(ctx)
    _, call = await run_call(ctx, number, [*greeting(), step(MENU, f"200 result={garbage}"),
                                           step(INVALID, "200 result=2"),
                                           *order_announced("housekeeping")])
    assert (call.disposition, call.reason) == ("order", "housekeeping")


async def test_silence_twice_reaches_an_operator(ctx: EngineContext) -> None:
    elder_id, number = await new_caller(ctx)
    _, call = await run_call(ctx, number, [*greeting(), step(MENU, TIMEOUT),
                                           step(NO_INPUT, TIMEOUT),
                                           *to_operator("no_input", elder_id)])
    assert (call.disposition, call.reason, call.order_id) == ("operator", "no_input", None)


async def test_a_wrong_key_after_silence_reaches_an_operator(ctx: EngineContext) -> None:
    elder_id, number = await new_caller(ctx)
    _, call = await run_call(ctx, number, [*greeting(), step(MENU, TIMEOUT),
                                           step(NO_INPUT, "200 result=6 (timeout)"),
                                           *to_operator("invalid_input", elder_id)])
    assert (call.disposition, call.reason) == ("operator", "invalid_input")


async def test_misses_spread_over_the_questions_reach_an_operator_at_the_third(
        ctx: EngineContext) -> None:
    elder_id, number = await new_caller(ctx)
    _, call = await run_call(ctx, number, [
        *greeting(), step(MENU, "200 result=5"), step(INVALID, "200 result=1"),
        step("GET DATA hotline/zh/confirm_meal 8000 1", TIMEOUT),
        step("GET DATA hotline/zh/no_input 5000 1", "200 result=2"),
        step(MENU, TIMEOUT), *to_operator("no_input", elder_id)])
    assert (call.disposition, call.reason) == ("operator", "no_input")


async def test_key_0_reaches_an_operator_and_key_9_is_an_emergency(ctx: EngineContext) -> None:
    elder_id, number = await new_caller(ctx)
    _, call = await run_call(ctx, number, [*greeting(), step(MENU, "200 result=0"),
                                           *to_operator("caller_request", elder_id)])
    assert (call.disposition, call.reason, call.order_id) == ("operator", "caller_request", None)

    elder_id, number = await new_caller(ctx)
    _, call = await run_call(ctx, number, [*greeting(), step(MENU, "200 result=9"),
                                           *to_operator("caller_emergency", elder_id, 10)])
    assert (call.disposition, call.reason) == ("operator", "caller_emergency")
    order = await order_of(ctx, call)
    assert (order.elder_id, order.service.value) == (elder_id, "emergency")


@pytest.mark.parametrize(("reply", "what"), [
    (("200 result=-1",), "GET DATA returns -1"),
    (("HANGUP", DEAD), "a HANGUP line, then 511"),
    ((DEAD,), "511 alone"),
    ((CLOSE,), "the socket closed"),
])
async def test_a_hangup_mid_menu_leaves_an_operator_call_back(
        ctx: EngineContext, reply: tuple[str, ...], what: str) -> None:
    _, number = await new_caller(ctx)
    _, call = await run_call(ctx, number, [*greeting(), step(MENU, *reply)])
    assert (call.disposition, call.reason, call.order_id) == (
        "abandoned", "callback_needed", None), what


async def test_a_hangup_after_the_order_keeps_the_order(ctx: EngineContext) -> None:
    _, number = await new_caller(ctx)
    _, call = await run_call(ctx, number, [
        *greeting(), step(MENU, "200 result=1"),
        step("GET DATA hotline/zh/confirm_meal 8000 1", "200 result=1"),
        step(f"SET VARIABLE HOTLINE_ORDER_NO {ANY}", "200 result=1"),
        step("SET VARIABLE HOTLINE_ROUTE done", "200 result=1"),
        step('STREAM FILE hotline/zh/order_number_is ""', "HANGUP", "200 result=-1 endpos=0")])
    assert (call.disposition, call.reason) == ("order", "meal")
    assert (await order_of(ctx, call)).service.value == "meal"


async def test_a_reply_that_is_not_fastagi_ends_the_flow_with_a_protocol_error(
        ctx: EngineContext) -> None:
    _, number = await new_caller(ctx)
    asterisk = ScriptedAsterisk([*greeting(), step(MENU, "200 result=1 garbage")])
    with pytest.raises(AgiProtocolError, match="unparseable"):
        await InboundFlow(ctx)(await asterisk.session("inbound", callerid=number))
    asterisk.check_done()
    assert asterisk.released


async def test_an_unexpected_command_fails_the_test_naming_it(ctx: EngineContext) -> None:
    _, number = await new_caller(ctx)
    asterisk = ScriptedAsterisk([*greeting(), step("GET DATA hotline/zh/menu_main 9999 1")])
    with pytest.raises(AssertionError, match="expected 'GET DATA hotline/zh/menu_main 9999 1'"
                       ", the flow sent 'GET DATA hotline/zh/menu_main 8000 1'"):
        await InboundFlow(ctx)(await asterisk.session("inbound", callerid=number))
    with pytest.raises(AssertionError, match="expected"):
        asterisk.check_done()
