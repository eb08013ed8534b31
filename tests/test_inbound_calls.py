"""Wire-level: each path of the 12349 call, engine and simulator over TCP.

Runs twice: on SQLite + embedded Redis (the newcomer's defaults) and on PostgreSQL + Redis.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from sqlalchemy import select

from dispatch.db import (
    async_sessionmaker_for,
    make_async_engine,
    make_sync_engine,
    write_transaction,
)
from dispatch.ledger import AccountKey, post
from dispatch.models import AccountKind, Elder, ElderPhone
from ivr.agi.server import ROUTE_VARIABLE
from ivr.demo.scenario import SERVICE_KEYS, prompt_seconds, shortest_prompt_seconds
from tests.callstack import CallStack, open_stack

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Just after the shortest recording of each prompt: in time in every language.
MENU_KEY_DELAY = shortest_prompt_seconds("menu_main") + 1.0
CONFIRM_KEY_DELAY = 1.0 + min(
    shortest_prompt_seconds(f"confirm_{service}") for service in SERVICE_KEYS.values()
)
HOUSEHOLD_KEY_DELAY = shortest_prompt_seconds("household_choose") + 1.0
RETRY_KEY_DELAY = shortest_prompt_seconds("invalid_input") + 1.0
LISTEN = {"silent": True}


def press(key: str, delay: float) -> dict[str, Any]:
    return {"press": key, "delay": delay}


def heard(result: dict[str, Any]) -> list[str]:
    return [entry[1].rsplit("/", 1)[-1] for entry in result["heard"]]


# dialplan steps between the engine's AGI and Queue that take no time (nothing is played)
INSTANT_APPS = {"GotoIf", "ExecIf", "Goto", "NoOp", "Answer", "Set", "UserEvent", "MixMonitor"}


def reassured_in_queue(result: dict[str, Any]) -> str:
    """The reassurance the caller heard from the queue's hold class (the prompt's name), with
    nothing played between the engine's decision and the queue, where operators ring at once:
    no STREAM FILE after HOTLINE_ROUTE=operator, only instant steps from AGI to Queue, and the
    hold class's announcement the one thing heard from the queue join on."""
    queue, variables = result["queue"], result["variables"]
    assert queue is not None and queue["musicclass"] == (
        f"hotline-{'emergency' if queue['priority'] > 0 else 'operator'}-"
        f"{variables['HOTLINE_LANGUAGE']}")
    commands = [command for command, _reply, _ms in result["agi"][0]["commands"]]
    routed = commands.index(f"SET VARIABLE {ROUTE_VARIABLE} operator")
    assert not any(c.startswith("STREAM FILE") for c in commands[routed:]), commands[routed:]
    apps = [app for _t, app, _data in result["apps"]]
    assert set(apps[apps.index("AGI") + 1 : apps.index("Queue")]) <= INSTANT_APPS, apps
    held = [entry for entry in result["heard"] if entry[0] >= queue["joined_at"]]
    assert len(held) == 1, result["heard"]
    return held[0][1].rsplit("/", 1)[-1]


def national(e164: str) -> str:
    return e164.removeprefix("+86")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["embedded", "servers"])
async def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[CallStack]:
    folder = tmp_path_factory.mktemp(f"calls-{request.param}")
    async for opened in open_stack(request.param, folder):
        yield opened


@pytest.mark.parametrize(("key", "service"), [("1", "meal"), ("2", "housekeeping"),
                                              ("3", "health")])
async def test_known_elder_orders_each_service(stack: CallStack, key: str, service: str) -> None:
    number = stack.numbers["elders"][int(key)]
    result = await stack.call(national(number),
                              [LISTEN, press(key, MENU_KEY_DELAY), press("1", CONFIRM_KEY_DELAY)])
    call, order = stack.record(result["uniqueid"])
    assert call is not None and order is not None
    assert call.disposition == "order" and call.identity_status == "elder"
    assert order.service == service and order.source == "phone"
    assert result["variables"]["HOTLINE_ROUTE"] == "done"
    assert result["variables"]["HOTLINE_ORDER_NO"] == order.order_no
    prompts = heard(result)
    start = prompts.index("order_number_is")
    assert prompts[start + 1 : start + 1 + len(order.order_no)] == [
        f"digit_{d}" for d in order.order_no
    ]
    assert prompts[-1] == "order_goodbye"
    assert result["queue"] is None
    assert call.answered_at <= call.order_announced_at <= call.ended_at


async def test_star_after_the_read_back_repeats_the_order_number(stack: CallStack) -> None:
    repeat = press("*", shortest_prompt_seconds("order_repeat") + 0.5)
    result = await stack.call(national(stack.numbers["elders"][17]),
                              [LISTEN, press("1", MENU_KEY_DELAY), press("1", CONFIRM_KEY_DELAY),
                               repeat, repeat])
    call, order = stack.record(result["uniqueid"])
    assert call.disposition == "order" and order is not None
    prompts = heard(result)
    said = [f"digit_{d}" for d in order.order_no]
    start = prompts.index("order_number_is") + 1
    # said, then again at each *, and once more; then the goodbye
    assert prompts[start:] == [*said, "order_repeat"] * 3 + ["order_goodbye"]


async def test_family_member_orders_on_behalf_of_the_elder(stack: CallStack) -> None:
    result = await stack.call("0086" + national(stack.numbers["family"][0]),
                              [LISTEN, press("2", MENU_KEY_DELAY), press("1", CONFIRM_KEY_DELAY)])
    call, order = stack.record(result["uniqueid"])
    assert call.identity_status == "family" and order is not None
    assert order.requested_by not in (None, "elder")
    assert "welcome_family" in heard(result)


@pytest.mark.parametrize(("number", "reason"), [("13912345678", "unknown_caller"),
                                                ("anonymous", "withheld_number")])
async def test_unknown_or_withheld_caller_reaches_an_operator(
    stack: CallStack, number: str, reason: str
) -> None:
    if number != "anonymous":
        number = national(stack.numbers["unknown"][0])
    result = await stack.call(number)
    call, _ = stack.record(result["uniqueid"])
    assert call.disposition == "operator" and call.reason == reason
    assert result["variables"]["HOTLINE_REASON"] == reason
    assert result["queue"] is not None and result["queue"]["answered_at"] is not None
    assert "menu_main" not in heard(result)


async def test_wrong_key_then_right_key_gives_an_order(stack: CallStack) -> None:
    script = [LISTEN, press("8", MENU_KEY_DELAY), press("3", RETRY_KEY_DELAY),
              press("1", CONFIRM_KEY_DELAY)]
    result = await stack.call(national(stack.numbers["elders"][6]), script)
    call, order = stack.record(result["uniqueid"])
    assert call.disposition == "order" and order.service == "health"
    # the short re-prompt took the key: the menu was not played again
    assert heard(result).count("menu_main") == 1 and "invalid_input" in heard(result)


async def test_late_but_in_time_key_is_accepted(stack: CallStack) -> None:
    number = stack.elder_number("zh", 0)
    script = [LISTEN, press("1", prompt_seconds("menu_main") + 7.0), press("1", CONFIRM_KEY_DELAY)]
    result = await stack.call(national(number), script)
    call, order = stack.record(result["uniqueid"])
    assert call.disposition == "order" and order.service == "meal"


async def test_barge_in_during_the_greeting(stack: CallStack) -> None:
    result = await stack.call(national(stack.numbers["elders"][8]),
                              [press("2", 1.5), press("1", CONFIRM_KEY_DELAY)])
    _, order = stack.record(result["uniqueid"])
    assert order.service == "housekeeping"
    assert "menu_main" not in heard(result)
    assert result["heard"][0][2] == "2"  # the greeting was interrupted by the key


@pytest.mark.parametrize("at", ["menu", "confirm"])
async def test_zero_reaches_a_human_from_anywhere(stack: CallStack, at: str) -> None:
    script = [LISTEN, press("0", MENU_KEY_DELAY)] if at == "menu" else \
        [LISTEN, press("1", MENU_KEY_DELAY), press("0", CONFIRM_KEY_DELAY)]
    result = await stack.call(national(stack.numbers["elders"][9]), script)
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason) == ("operator", "caller_request")
    assert order is None and result["queue"]["answered_at"] is not None


async def test_changing_ones_mind_at_confirmation(stack: CallStack) -> None:
    script = [LISTEN, press("1", MENU_KEY_DELAY), press("2", CONFIRM_KEY_DELAY),
              press("3", MENU_KEY_DELAY), press("1", CONFIRM_KEY_DELAY)]
    result = await stack.call(national(stack.numbers["elders"][10]), script)
    _, order = stack.record(result["uniqueid"])
    assert order.service == "health"


async def _fill_card(stack: CallStack, elder_id: int, vouchers_fen: int, own_fen: int) -> None:
    """Credit the elder's card as the vouchers and a deposit at the counter would."""
    engine = make_async_engine(stack.db_url, pool_size=1)
    at = datetime.now(UTC)
    try:
        async with async_sessionmaker_for(engine)() as session:
            for key, account, source, fen in (
                    ("voucher", AccountKind.ELDER_SUBSIDY, AccountKind.SUBSIDY_FUND, vouchers_fen),
                    ("deposit", AccountKind.ELDER_OWN, AccountKind.ELDER_DEPOSITS, own_fen)):
                await post(session, f"test-{key}:{elder_id}", key, at,
                           {AccountKey(account, elder_id): fen, AccountKey(source): -fen},
                           month=f"{at:%Y-%m}")
    finally:
        await engine.dispose()


def _elder_id(stack: CallStack, number: str) -> int:
    return int(stack.rows(select(ElderPhone.elder_id)
                          .where(ElderPhone.number_e164 == number))[0][0])


async def test_four_reads_the_card_balances_then_the_menu_again(stack: CallStack) -> None:
    number = stack.numbers["elders"][19]
    await _fill_card(stack, _elder_id(stack, number), 30_000, 1_235)
    script = [LISTEN, press("4", MENU_KEY_DELAY), press("1", MENU_KEY_DELAY),
              press("1", CONFIRM_KEY_DELAY)]
    result = await stack.call(national(number), script)
    call, order = stack.record(result["uniqueid"])
    assert call.disposition == "order" and order.service == "meal"
    prompts = heard(result)
    start = prompts.index("menu_main") + 1
    # 补贴余额三百元，自费余额十二元三角五分; then the menu again
    assert prompts[start:start + 13] == [
        "balance_vouchers", "digit_3", "hundred", "yuan",
        "balance_own", "ten", "digit_2", "yuan", "digit_3", "jiao", "digit_5", "fen",
        "menu_main"]


async def test_no_card_is_said_so_and_after_three_turns_a_human_answers(
        stack: CallStack) -> None:
    script = [LISTEN, *[press("4", MENU_KEY_DELAY)] * 3]
    # a family member asks for the elder's card, which the elder does not have
    result = await stack.call(national(stack.numbers["family"][2]), script)
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason, order) == ("operator", "undecided", None)
    prompts = heard(result)
    assert prompts.count("balance_no_card") == 3
    assert prompts[prompts.index("balance_no_card") - 1] == "menu_main"
    assert call.identity_status == "family"
    assert reassured_in_queue(result) == "to_operator"


async def test_hanging_up_mid_menu_asks_an_operator_to_call_back(stack: CallStack) -> None:
    result = await stack.call(national(stack.numbers["elders"][11]), [LISTEN], hangup_after=10.0)
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason) == ("abandoned", "callback_needed")
    assert order is None and result["hangup_by"] == "caller"
    events = await _stream_events(stack)
    assert any(e["type"] == "callback_needed" and e["data"]["uniqueid"] == result["uniqueid"]
               for e in events)


async def test_one_key_handset_skips_the_menu(stack: CallStack) -> None:
    result = await stack.call(national(stack.numbers["handsets"][0]))
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason) == ("operator", "handset_emergency")
    assert order is not None and order.service == "emergency"
    assert result["variables"]["QUEUE_PRIO"] == "10"
    # no menu and no prompt before the queue: the hold class's reassurance is all it hears
    assert reassured_in_queue(result) == "emergency" and heard(result) == ["emergency"]


@pytest.mark.parametrize("at", ["menu", "confirm"])
async def test_nine_is_an_emergency_from_any_menu(stack: CallStack, at: str) -> None:
    script = [LISTEN, press("9", MENU_KEY_DELAY)] if at == "menu" else \
        [LISTEN, press("2", MENU_KEY_DELAY), press("9", CONFIRM_KEY_DELAY)]
    result = await stack.call(national(stack.numbers["elders"][13]), script)
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason) == ("operator", "caller_emergency")
    assert order.service == "emergency" and order.priority == 0
    assert result["variables"]["QUEUE_PRIO"] == "10"
    assert reassured_in_queue(result) == "emergency"
    assert heard(result).count("emergency") == 1  # not also before the queue


async def test_operators_see_who_is_calling_before_they_answer(stack: CallStack) -> None:
    result = await stack.call(national(stack.numbers["handsets"][1]))
    pops = [e["data"] for e in await _stream_events(stack)
            if e["type"] == "screen_pop" and e["data"]["uniqueid"] == result["uniqueid"]]
    assert len(pops) == 1
    pop = pops[0]
    assert (pop["reason"], pop["priority"]) == ("handset_emergency", 10)
    profile = pop["profile"]
    assert profile["name"] and profile["address"] and "health_notes" in profile
    assert any(phone["kind"] == "handset" for phone in profile["phones"])
    # the caller is queued while the order is stored: the order's number follows the pop
    _call, order = stack.record(result["uniqueid"])
    created = [e["data"] for e in await _stream_events(stack)
               if e["type"] == "order_created" and e["data"]["uniqueid"] == result["uniqueid"]]
    assert [c["order_no"] for c in created] == [order.order_no]
    assert created[0]["service"] == "emergency"
    place = pop["place"]  # the console filters by region on it
    assert (place["province_code"], place["city_code"]) == ("620000", "620100")
    assert place["county_code"].startswith("6201") and len(place["county_code"]) == 6


async def test_live_state_and_event_stream(stack: CallStack) -> None:
    result = await stack.call(national(stack.numbers["elders"][12]),
                              [LISTEN, press("1", MENU_KEY_DELAY), press("1", CONFIRM_KEY_DELAY)])
    events = [e for e in await _stream_events(stack)
              if e["data"].get("uniqueid") == result["uniqueid"]]
    kinds = [e["type"] for e in events]
    assert kinds == ["call_started", "order_created", "call_ended"]  # no screen pop: no human
    started, created = (events[0]["data"]["place"], events[1]["data"]["place"])
    assert started == created and started["city_code"] == "620100"
    live_calls = f"{stack.settings.redis.key_prefix}calls:live"
    assert not await _redis(stack).sismember(live_calls, result["uniqueid"])


def _redis(stack: CallStack) -> aioredis.Redis:
    assert stack.engine is not None and stack.engine.redis is not None
    return stack.engine.redis.client


async def _stream_events(stack: CallStack) -> list[dict[str, Any]]:
    client = _redis(stack)
    entries = await client.xrange(f"{stack.settings.redis.key_prefix}events")
    return [{"type": fields[b"type"].decode(), "data": json.loads(fields[b"data"])}
            for _, fields in entries]




def join_household(stack: CallStack, number_e164: str, name: str) -> tuple[int, int]:
    """Register ``name`` on the number another elder already has (a couple's landline);
    returns (the first member's id, the new member's id)."""
    engine = make_sync_engine(stack.db_url)
    try:
        with write_transaction(engine) as conn:  # reads, then writes: the write lock first
            first, kind = conn.execute(select(ElderPhone.elder_id, ElderPhone.kind)
                                       .where(ElderPhone.number_e164 == number_e164)).one()
            elder_id = conn.execute(Elder.__table__.insert().values(
                name=name, preferred_language="zh", subsidy_category="none",
                address="城关区张掖路1号", health_notes="糖尿病",
                created_at=datetime.now(UTC))).inserted_primary_key[0]
            conn.execute(ElderPhone.__table__.insert().values(
                elder_id=elder_id, number_e164=number_e164, kind=kind))
    finally:
        engine.dispose()
    return first, elder_id


async def test_a_household_caller_chooses_who_is_calling(stack: CallStack) -> None:
    number = stack.numbers["elders"][15]
    first, second = join_household(stack, number, "李建国")
    result = await stack.call(national(number), [
        LISTEN, press("2", HOUSEHOLD_KEY_DELAY), press("3", MENU_KEY_DELAY),
        press("1", CONFIRM_KEY_DELAY)])
    call, order = stack.record(result["uniqueid"])
    assert call.disposition == "order" and order is not None
    assert (order.elder_id, call.elder_id, order.service) == (second, second, "health")
    prompts = heard(result)
    assert prompts.index("welcome") < prompts.index("household_choose") < prompts.index(
        "menu_main")
    # and the first registered presses 1; a key nobody has hears the short re-prompt
    result = await stack.call(national(number), [
        LISTEN, press("7", HOUSEHOLD_KEY_DELAY), press("1", RETRY_KEY_DELAY),
        press("1", MENU_KEY_DELAY), press("1", CONFIRM_KEY_DELAY)])
    call, order = stack.record(result["uniqueid"])
    assert (order.elder_id, order.service) == (first, "meal")
    assert heard(result).count("household_choose") == 1 and "invalid_input" in heard(result)


def _household_pop(events: list[dict[str, Any]], uniqueid: str) -> dict[str, Any]:
    [pop] = [e["data"] for e in events
             if e["type"] == "screen_pop" and e["data"]["uniqueid"] == uniqueid]
    return pop


async def _reread_handset_lines(stack: CallStack) -> None:
    """What the engine's next periodic read of the handset lines does (ivr/handset_lines.py)."""
    assert stack.engine is not None and stack.engine.context is not None
    assert await stack.engine.context.handsets.refresh(stack.engine.context)


async def test_a_household_handset_is_an_emergency_for_all_at_once(stack: CallStack) -> None:
    number = stack.numbers["handsets"][3]
    first, second = join_household(stack, number, "刘淑芬")
    await _reread_handset_lines(stack)
    result = await stack.call(national(number))
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason) == ("operator", "handset_emergency")
    assert order.service == "emergency" and result["variables"]["QUEUE_PRIO"] == "10"
    assert reassured_in_queue(result) == "emergency" and heard(result) == ["emergency"]
    pop = _household_pop(await _stream_events(stack), result["uniqueid"])
    assert [member["elder_id"] for member in pop["household"]] == [first, second]
    assert pop["household"][1]["name"] == "刘淑芬"
    assert pop["household"][1]["health_notes"] == "糖尿病"
    assert pop["household"][0] == pop["profile"]


async def test_nine_at_the_household_question_queues_at_once(stack: CallStack) -> None:
    number = stack.numbers["elders"][16]
    first, second = join_household(stack, number, "王建华")
    result = await stack.call(national(number), [LISTEN, press("9", HOUSEHOLD_KEY_DELAY)])
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason) == ("operator", "caller_emergency")
    assert order.service == "emergency" and result["variables"]["QUEUE_PRIO"] == "10"
    assert reassured_in_queue(result) == "emergency"
    pop = _household_pop(await _stream_events(stack), result["uniqueid"])
    assert [member["elder_id"] for member in pop["household"]] == [first, second]


async def test_a_handset_registered_since_the_last_read_is_an_emergency_too(
        stack: CallStack) -> None:
    """A handset line the engine has not read yet is found through the registry."""
    elder_id = stack.rows(select(ElderPhone.elder_id).where(
        ElderPhone.number_e164 == stack.numbers["elders"][19]))[0][0]
    number = "+8613912349019"
    engine = make_sync_engine(stack.db_url)
    try:
        with engine.begin() as conn:
            conn.execute(ElderPhone.__table__.insert().values(
                elder_id=elder_id, number_e164=number, kind="handset"))
    finally:
        engine.dispose()
    result = await stack.call(national(number))
    call, order = stack.record(result["uniqueid"])
    assert (call.disposition, call.reason) == ("operator", "handset_emergency")
    assert order.service == "emergency" and order.elder_id == elder_id
    assert result["variables"]["QUEUE_PRIO"] == "10"
