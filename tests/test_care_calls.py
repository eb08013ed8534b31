"""Wire-level: caring calls placed by the engine through the simulator's AMI, answered by
the simulator's phones (engine and simulator over TCP, simulated time). A check-in greets
the elder by surname and honorific, and hears well, help and operator answers; an elder who
never answers is tried three times, then the family is called and a welfare check tops the
operators' worklist; a plan outside the allowed hours waits."""

from __future__ import annotations

import contextlib
import itertools
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update

from dispatch.care_calendar import Festival, festival_date
from dispatch.care_calls import requested_by
from dispatch.care_plans import add_campaign
from dispatch.care_report import CareReport, care_report, format_care_report
from dispatch.db import async_sessionmaker_for, make_async_engine
from dispatch.models import (
    Call,
    CareKind,
    CarePlan,
    CareRound,
    Elder,
    OrderEvent,
    OutboundCall,
    QueueCall,
    ServiceType,
    WorkOrder,
)
from dispatch.open_alarms import RETRY_EVENT
from dispatch.orders import create_order
from dispatch.phones import national
from dispatch.quality import callback_number
from dispatch.worklist import worklist
from tests.callstack import CallStack, open_stack, until
from tests.hours_ahead import hours_far_from_now
from tests.sim_phones import answers_and_presses

TZ = ZoneInfo("Asia/Shanghai")
ALL_DAY = {"allowed_from": "00:00", "allowed_until": "23:59:59"}
OPERATOR = [{"name": "op1", "answer_delay_s": 5.0, "talk_s": 30.0, "available": True}]


def care_overrides(trunk_channels: int | None = None, ring_timeout_s: float = 20.0,
                   **care: Any) -> dict[str, Any]:
    trunk = {} if trunk_channels is None else {"trunk_channels": trunk_channels}
    return {"dial": {"ring_timeout_s": ring_timeout_s},
            "dispatch": {"reconcile_s": 0.3, "rank_refresh_s": 1e9, **trunk},
            "emergency": {"callback_min_gap_s": 30.0},
            "care": {"retry_s": 20.0, "tries": 3, **ALL_DAY, **care}}


@contextlib.asynccontextmanager
async def care_stack(tmp_path: Path, clock_start: datetime | None = None, **care: Any
                     ) -> AsyncIterator[CallStack]:
    async for stack in open_stack("embedded", tmp_path, elders=60, ami=True,
                                  engine_overrides=care_overrides(**care),
                                  clock_start=clock_start):
        yield stack


async def elders_with_phones(stack: CallStack, count: int) -> list[tuple[int, str]]:
    """The first ``count`` elders with a phone: (elder id, the number the engine will call,
    national). Their phones and names are set before their plans are stored: the engine
    dials a plan due now at its next sweep."""
    engine = make_async_engine(stack.db_url, pool_size=1)
    chosen: list[tuple[int, str]] = []
    try:
        async with async_sessionmaker_for(engine)() as session:
            for elder_id in (await session.scalars(select(Elder.id).order_by(Elder.id))).all():
                number = await callback_number(session, elder_id)
                if number is not None:
                    chosen.append((elder_id, national(number)))
                if len(chosen) == count:
                    break
    finally:
        await engine.dispose()
    return chosen


async def add_plans(stack: CallStack, elders: list[int],
                    kinds: list[tuple[CareKind, str | None]] | None = None,
                    start: time = time(0, 0), end: time = time(23, 59, 59)) -> None:
    """A plan for each elder, of its (kind, words): check-ins by default."""
    engine = make_async_engine(stack.db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            for elder_id, (kind, message) in zip(
                    elders, kinds or [(CareKind.CHECK_IN, None)] * len(elders), strict=True):
                await session.execute(insert(CarePlan).values(
                    elder_id=elder_id, kind=kind, message=message, window_start=start,
                    window_end=end, weekdays=127, created_at=datetime.now(UTC)))
            await session.commit()
    finally:
        await engine.dispose()


async def plan_check_ins(stack: CallStack, count: int, start: time = time(0, 0),
                         end: time = time(23, 59, 59), phone: dict[str, Any] | None = None,
                         planned: int | None = None) -> list[tuple[int, str]]:
    """The first ``count`` elders with a phone, whose phones all behave as ``phone`` (the
    simulator's default phone when None), and check-in plans for the first ``planned`` of
    them (all by default): (elder id, number)."""
    chosen = await elders_with_phones(stack, count)
    if phone is not None:
        await stack.sim.request("phones", phones={number: phone for _e, number in chosen})
    await add_plans(stack, [elder for elder, _number in chosen][:planned], start=start,
                    end=end)
    return chosen


async def name_elders(stack: CallStack, names: dict[int, tuple[str, str]]) -> None:
    """Give elders a name and gender: {elder id: (name, gender)}."""
    engine = make_async_engine(stack.db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            for elder_id, (name, gender) in names.items():
                await session.execute(update(Elder).where(Elder.id == elder_id)
                                      .values(name=name, gender=gender))
            await session.commit()
    finally:
        await engine.dispose()


async def day_report(stack: CallStack, day: Any) -> CareReport:
    assert stack.engine is not None and stack.engine.context is not None
    async with stack.engine.context.sessions() as session:
        return await care_report(session, day, stack.settings.dispatch.trunk_channels)


def round_of(stack: CallStack, elder_id: int) -> Any:
    found = stack.rows(select(CareRound).where(CareRound.elder_id == elder_id))
    return found[0] if found else None


async def test_a_check_in_hears_well_help_and_operator(tmp_path: Path) -> None:
    async with care_stack(tmp_path) as stack:
        await stack.sim.request("operators", operators=OPERATOR)
        (well, well_no), (help_, help_no), (op, op_no) = await elders_with_phones(stack, 3)
        await name_elders(stack, {well: ("张桂兰", "F"), help_: ("欧阳建国", "M"),
                                  op: ("禤明", "M")})  # 禤: a surname not recorded
        await stack.sim.request("phones", phones={
            well_no: answers_and_presses(("1", 2.0)),
            help_no: answers_and_presses(("2", 2.0)),
            op_no: answers_and_presses(("0", 2.0))})
        await add_plans(stack, [well, help_, op])

        async def ended() -> bool:
            states = [getattr(round_of(stack, e), "state", None) for e in (well, help_, op)]
            return states == ["well", "help", "operator"]

        await until(ended, "the three check-ins to end with the answers")
        # 2: a call-back item on the operators' worklist, with the elder's number (written
        # before the round's end: a round ended "help" has it)
        assert stack.engine is not None and stack.engine.context is not None
        ctx = stack.engine.context
        async with ctx.sessions() as session:
            items = await worklist(session, ctx.now(), 600.0, 3600.0)
        helped = [i for i in items if i.section == "call_back"
                  and i.note == "asked for help on a check-in call"]
        assert len(helped) == 1
        # 0: the elder reached the operators' queue, for the right reason
        joined = await stack.poll(select(QueueCall.reason, QueueCall.answered_at), bool)
        assert [reason for reason, _ in joined] == ["care_operator"]
        # every try dialled once, each answered
        tries = stack.rows(select(OutboundCall.round_id, OutboundCall.outcome)
                     .where(OutboundCall.purpose == "care_call"))
        assert sorted(outcome for _r, outcome in tries) == ["help", "operator", "well"]
        # nobody was escalated
        assert stack.rows(select(WorkOrder.id).where(WorkOrder.source == "care_check")) == []
        # greeted by surname and honorific where the surname is recorded
        heard = {call["channel"]: [path.rsplit("/", 1)[-1] for path in call["heard"]]
                 for call in (await stack.sim.request("originated"))["originated"]}
        greetings = {number: next(prompts[:prompts.index(q)] for channel, prompts in
                                  heard.items() if number in channel
                                  for q in prompts if q == "checkin_question")
                     for number in (well_no, help_no, op_no)}
        assert greetings == {
            well_no: ["surname_5f20", "honorific_female", "care_greeting_named"],
            help_no: ["surname_6b27_9633", "honorific_male", "care_greeting_named"],
            op_no: ["care_greeting"]}, heard
        report = await day_report(stack, round_of(stack, well).day)
        assert (report.due, report.by_state["well"], report.by_state["help"],
                report.by_state["operator"], report.calls, report.elders_called) == (
            3, 1, 1, 1, 3, 3)
        assert report.utilisation is not None and 0 < report.utilisation <= 1
        assert "asked for help (call-back item): 1" in format_care_report(report)


async def test_a_reminder_says_its_own_words_and_others_their_prompt(tmp_path: Path) -> None:
    words = "下午三点去社区医院复诊，记得带上病历。"
    async with care_stack(tmp_path) as stack:
        chosen = await elders_with_phones(stack, 3)
        await stack.sim.request("phones", phones={  # they listen, and press nothing
            number: answers_and_presses(ring_s=2.0) for _e, number in chosen})
        await add_plans(stack, [elder for elder, _number in chosen],
                        [(CareKind.REMINDER, words), (CareKind.REMINDER, words),
                         (CareKind.COMPANION, None)])
        await stack.poll(select(CareRound.state), lambda states: len(states) == 3 and all(
            state == "well" for state, in states))
        heard = {call["channel"]: call["heard"]
                 for call in (await stack.sim.request("originated"))["originated"]}
        said = {number: next(paths for channel, paths in heard.items() if number in channel)
                for _e, number in chosen}
        spoken = stack.settings.care.words_dir / "zh"
        (kept,) = spoken.glob("words_*.wav")  # the same words, rendered once
        for _e, number in chosen[:2]:
            assert said[number][-3:-1] == [str(kept.with_suffix("")),
                                           "hotline/zh/care_help_key"], said[number]
        assert said[chosen[2][1]][-2] == "hotline/zh/care_companion"
        with wave.open(str(kept), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getnframes() > 8000 * 2  # the words, said slowly
        assert not list(spoken.glob("*.wav.*")) and not list(spoken.glob("tmp*"))


async def test_an_unreached_elder_is_tried_three_times_then_family_then_worklist(
        tmp_path: Path) -> None:
    async with care_stack(tmp_path) as stack:
        ((elder_id, _number),) = await plan_check_ins(stack, 1, phone={"answer": "noanswer"})

        async def welfare_check() -> Any:
            found = stack.rows(select(WorkOrder).where(WorkOrder.source == "care_check"))
            return found[0] if found else None

        order = await until(welfare_check, "the welfare check", timeout_s=120.0)
        care_round = round_of(stack, elder_id)
        assert (care_round.state, care_round.outcome, care_round.tries) == (
            "escalated", "welfare_check", 3)
        assert (order.elder_id, order.service, order.requested_by) == (
            elder_id, "emergency", requested_by(care_round.id))
        tries = stack.rows(select(OutboundCall.seq, OutboundCall.outcome, OutboundCall.due_at)
                     .where(OutboundCall.round_id == care_round.id)
                     .order_by(OutboundCall.seq))
        assert [(seq, outcome) for seq, outcome, _ in tries] == [
            (1, "no_answer"), (2, "no_answer"), (3, "no_answer")]
        gaps = [(b[2] - a[2]).total_seconds() for a, b in itertools.pairwise(tries)]
        assert all(gap >= 20.0 for gap in gaps), gaps
        # the family escalation of the welfare check began
        family = await stack.poll(
            select(OrderEvent.kind).where(OrderEvent.order_id == order.id,
                                          OrderEvent.kind.like("family_%")), bool)
        assert family
        # and it tops the operators' worklist as an emergency nobody answered
        assert stack.engine is not None and stack.engine.context is not None
        ctx = stack.engine.context
        async with ctx.sessions() as session:
            items = await worklist(session, ctx.now(), 600.0, 3600.0)
        assert items and (items[0].section, items[0].order_no) == ("unattended",
                                                                  order.order_no)
        report = await day_report(stack, care_round.day)
        assert (report.by_state["escalated"], report.calls, report.most_calls) == (1, 3, 3)
        (escalation,) = report.escalations
        assert (escalation.elder_id, escalation.order_no) == (elder_id, order.order_no)
        assert f"welfare check {order.order_no}" in format_care_report(report)


async def test_a_plan_outside_the_allowed_hours_waits_for_them(tmp_path: Path) -> None:
    opens, closes = hours_far_from_now()
    hours = {"allowed_from": opens, "allowed_until": closes}
    async with care_stack(tmp_path, **hours) as stack:
        ((elder_id, _number),) = await plan_check_ins(stack, 1)
        assert stack.engine is not None and stack.engine.dispatcher is not None
        dispatcher = stack.engine.dispatcher
        swept = dispatcher.sweeps + 3
        await until(lambda: dispatcher.sweeps >= swept, "three sweeps")
        care_round = round_of(stack, elder_id)
        assert care_round is not None and care_round.state == "due"
        assert stack.rows(select(OutboundCall.id).where(
            OutboundCall.purpose == "care_call")) == []
        assert f"{care_round.due_at.astimezone(TZ):%H:%M}" == hours["allowed_from"]
        assert stack.rows(select(Call.uniqueid)) == []


async def greet_county(stack: CallStack) -> tuple[str, dict[int, str]]:
    """A Double Ninth campaign for the county of the first elder with a phone: the county
    and its elders' numbers (national) by elder id; every phone there answers and listens."""
    engine = make_async_engine(stack.db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            first = await session.scalar(select(Elder.county_code).order_by(Elder.id).limit(1))
            assert first is not None
            numbers = {}
            for elder_id in (await session.scalars(
                    select(Elder.id).where(Elder.county_code == first))).all():
                number = await callback_number(session, elder_id)
                if number is not None:
                    numbers[elder_id] = national(number)
            await stack.sim.request("phones", phones={
                number: {"answer": "answer", "ring_s": 2.0, "hangup_after": None, "script": []}
                for number in numbers.values()})
            await add_campaign(session, Festival.DOUBLE_NINTH, 2026, county_code=first,
                               subsidy_category=None, message="重阳节快乐",
                               at=datetime.now(UTC))
    finally:
        await engine.dispose()
    return first, numbers


async def test_a_holiday_campaign_greets_on_the_festival_and_not_the_day_before(
        tmp_path: Path) -> None:
    festival = festival_date(Festival.DOUBLE_NINTH, 2026)
    the_eve = datetime.combine(festival - timedelta(days=1), time(10, 0), TZ)
    async with care_stack(tmp_path / "eve", clock_start=the_eve) as stack:
        await greet_county(stack)
        assert stack.engine is not None and stack.engine.dispatcher is not None
        dispatcher = stack.engine.dispatcher
        swept = dispatcher.sweeps + 3
        await until(lambda: dispatcher.sweeps >= swept, "three sweeps")
        assert stack.rows(select(CareRound.id)) == []
        assert (await stack.sim.request("originated"))["originated"] == []
    the_day = datetime.combine(festival, time(10, 0), TZ)
    async with care_stack(tmp_path / "day", clock_start=the_day) as stack:
        _county, numbers = await greet_county(stack)
        greeted = await stack.poll(
            select(CareRound.elder_id, CareRound.day, CareRound.state),
            lambda rows: len(rows) == len(numbers) and all(
                r.state in ("well", "unreached") for r in rows))
        assert {r.elder_id for r in greeted} == set(numbers)
        assert {(r.day, r.state) for r in greeted} == {(festival, "well")}
        heard = {call["channel"]: [path.rsplit("/", 1)[-1] for path in call["heard"]]
                 for call in (await stack.sim.request("originated"))["originated"]}
        assert len(heard) == len(numbers)
        # the campaign's own words ("重阳节快乐"), rendered once, then "press 0 for help"
        spoken = {prompts[prompts.index("care_help_key") - 1] for prompts in heard.values()}
        assert len(spoken) == 1 and spoken.pop().startswith("words_"), heard
        assert stack.rows(select(WorkOrder.id).where(WorkOrder.source == "care_check")) == []


async def test_an_emergency_call_back_takes_a_line_ahead_of_waiting_caring_calls(
        tmp_path: Path) -> None:
    """Three trunk lines, one kept from caring calls; eight check-ins ring unanswered while
    an emergency nobody has answered is called back. The call-back goes out while caring
    calls still wait, caring calls leave its line to it, and together they never hold more
    than the trunk's three lines."""
    async with care_stack(tmp_path, trunk_channels=3, reserve_channels=1, tries=1,
                          ring_timeout_s=60.0) as stack:
        *caring, (emergency_elder, _number) = await plan_check_ins(
            stack, 9, phone={"answer": "noanswer"}, planned=8)
        engine = make_async_engine(stack.db_url, pool_size=1)
        try:
            async with async_sessionmaker_for(engine)() as session:
                # the emergency opens once caring calls hold their two lines
                await stack.poll(select(OutboundCall.id).where(
                    OutboundCall.purpose == "care_call", OutboundCall.state == "dialing"),
                    lambda rows: len(rows) >= 2)
                order = await create_order(session, elder_id=emergency_elder,
                                           service=ServiceType.EMERGENCY, source="handset",
                                           call_uniqueid=None, requested_by="elder",
                                           at=datetime.now(UTC))
        finally:
            await engine.dispose()
        retried = await stack.poll(
            select(OrderEvent.at, OrderEvent.detail).where(
                OrderEvent.order_id == order.id, OrderEvent.kind == RETRY_EVENT), bool,
            timeout_s=120.0)
        await stack.poll(select(CareRound.state).where(
            CareRound.elder_id.in_([e for e, _n in caring])),
            lambda rows: len(rows) == 8 and all(r.state == "escalated" for r in rows),
            timeout_s=120.0)
    ended, detail = retried[0]
    began = datetime.fromisoformat(detail["started_at"])
    calls = stack.rows(select(OutboundCall.claimed_at, OutboundCall.finished_at)
                       .where(OutboundCall.purpose == "care_call"))
    assert len(calls) == 8
    # it went out while caring calls still waited for a line
    assert any(claimed > began for claimed, _finished in calls)
    # while it rang, a caring call took a line only with no other caring call on one: the
    # trunk's three less the call-back's less the one kept free
    for claimed, _finished in calls:
        if began <= claimed < ended:
            others = sum(c < claimed < f for c, f in calls)
            assert others == 0, (claimed, others)
    # never more than the trunk's lines at once, the call-back's included
    moments = sorted({at for call in calls for at in call} | {began, ended})
    for at in moments:
        busy = sum(claimed <= at < finished for claimed, finished in calls)
        busy += began <= at < ended
        assert busy <= 3, (at, busy)
        assert sum(claimed <= at < finished for claimed, finished in calls) <= 2


async def test_a_caring_call_holds_its_line_until_it_hangs_up(tmp_path: Path) -> None:
    """Two trunk lines, one kept from caring calls: three check-ins answered at once with
    "well" go out one after another, each only after the one before has hung up (its
    thanks still used the line after its answer was stored)."""
    async with care_stack(tmp_path, trunk_channels=2, reserve_channels=1) as stack:
        await plan_check_ins(stack, 3, phone=answers_and_presses(("1", 1.0), ring_s=1.0))
        await stack.poll(select(CareRound.state), lambda states: len(states) == 3 and all(
            state == "well" for state, in states))
        await stack.poll(select(OutboundCall.hung_up_at), lambda rows: len(rows) == 3 and all(
            at is not None for at, in rows))
        calls = sorted((call["at"], call["ended_at"]) for call in
                       (await stack.sim.request("originated"))["originated"])
        lines = stack.rows(select(OutboundCall.finished_at, OutboundCall.hung_up_at,
                                  OutboundCall.uniqueid))
    assert len(calls) == 3 and all(ended is not None for _at, ended in calls)
    for (_at, ended), (next_at, _next_ended) in itertools.pairwise(calls):
        assert next_at >= ended, calls
    # the answer was stored before the hangup: the line was held after the outcome
    assert all(finished < hung_up and uniqueid for finished, hung_up, uniqueid in lines), lines
