"""The inbound 12349 call: identify the caller, one short menu, a committed work order.

The menu is the keypad's; with the speech service running it is also spoken: the elder may
say the choice or press the key (ivr/flows/spoken_menu.py), and speech not understood twice
reaches a human.

Every way out of this flow is either an order whose number the elder heard, or a route to a
human (the operator queue, or an operator call-back when the elder hung up before choosing).

An elder flagged ``no_menu`` in the registry hears no menu: the call goes straight to the
operators (reason ``no_menu_elder``) with the screen pop.

A number several elders share (a household) is asked which of them is calling, by the key of
their place in the registry (1 for the first registered, 2 for the next, ...), before the
menu; names are not spoken, as prompts are recorded ahead. A one-key handset on a shared
line, or key 9 at that question, is an emergency at once, and the operators' screen pop
carries every member's profile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from dispatch.calls import CallDisposition, CallReason
from dispatch.console_events import CallbackNeeded, CallEnded, CallStarted, OrderCreated
from dispatch.orders import ServiceType, StoredOrder, create_announced_order
from dispatch.phones import mask, normalize
from dispatch.registry import CallerIdentity, CallerStatus, HouseholdMember, identify_number
from dispatch.selection import is_open
from ivr.agi.errors import AgiHangup
from ivr.agi.server import REASON_VARIABLE, ROUTE_VARIABLE
from ivr.agi.session import AgiSession
from ivr.context import EngineContext
from ivr.emergency_orders import EmergencyCall, stored_or_spooled
from ivr.flows.balances import read_card
from ivr.flows.spoken_menu import SpokenMenu
from ivr.menu import (
    CONFIRM_INTENT_KEYS,
    CONFIRM_KEY,
    EMERGENCY_KEY,
    MAIN_INTENT_KEYS,
    MAX_ORDER_REPEATS,
    OPERATOR_KEY,
    ORDER_REPEAT_TIMEOUT_MS,
    RECHOOSE_KEY,
    REPEAT_KEY,
    RETRY_TIMEOUT_MS,
    Choice,
    main_choice,
    menu_escape_digits,
)
from ivr.metrics import POPS_SHOWN
from ivr.pop_delivery import is_uniqueid
from ivr.screen_pop import publish_screen_pop
from ivr.speech.service import SpeechService
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)
T = TypeVar("T")

EMERGENCY_QUEUE_PRIORITY = 10
QUEUE_REASSURANCE = "to_operator"  # announced by the operator queue's hold class instead
MAX_RECHOOSE = 2
MAX_MISHEARD = 2  # speech not understood this often: a human takes over
# An emergency caller waits this long (real seconds) at most for the operators' screen pop
# before going on to the queue; the pop goes on meanwhile and follows moments later.
EMERGENCY_POP_WAIT_S = 0.15


class RouteToHuman(Exception):
    """Leave the menu and queue the call for an operator."""

    def __init__(self, reason: CallReason, prompt: str = QUEUE_REASSURANCE, priority: int = 0
                 ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.prompt = prompt
        self.priority = priority


@dataclass
class CallOutcome:
    """What the flow learned, written to the call record when the call ends."""

    started_at: datetime
    answered_at: datetime | None = None
    linkedid: str | None = None
    identity: CallerIdentity | None = None
    order_id: int | None = None
    order_no: str | None = None
    order_announced_at: datetime | None = None
    disposition: CallDisposition = CallDisposition.ABANDONED
    reason: CallReason | ServiceType | None = None
    strikes: list[str] = field(default_factory=list)
    misheard: int = 0
    emergency_order: asyncio.Task[StoredOrder | None] | None = field(default=None, repr=False)
    screen_pop: asyncio.Task[None] | None = field(default=None, repr=False)
    live_start: asyncio.Task[None] | None = field(default=None, repr=False)
    spoken: SpokenMenu | None = field(default=None, repr=False)


class InboundFlow:
    """FastAGI route ``inbound``: the call an elder (or family) makes to 12349."""

    def __init__(self, ctx: EngineContext, speech: SpeechService | None = None) -> None:
        self.ctx = ctx
        self.ivr = ctx.settings.ivr
        self.speech = speech

    async def __call__(self, agi: AgiSession) -> None:
        outcome = CallOutcome(started_at=self.ctx.now())
        try:
            await self._run(agi, outcome)
        except RouteToHuman as route:
            await self._route_to_human(agi, outcome, route)
        except AgiHangup:
            if outcome.order_id is None:
                outcome.disposition = CallDisposition.ABANDONED
                outcome.reason = CallReason.HANGUP_BEFORE_ORDER
        finally:
            # the caller goes on to the queue (or hangs up) without waiting for the call
            # record: a slow write must not keep an elder from the operators
            agi.release()
            await self._finish(agi, outcome)

    # -- the dialogue ---------------------------------------------------------------------

    async def _run(self, agi: AgiSession, outcome: CallOutcome) -> None:
        await agi.answer()
        outcome.answered_at = self.ctx.now()
        outcome.linkedid = linkedid_argument(agi.env.args) or await agi.get_variable(
            "CHANNEL(linkedid)")
        identity = await self._identify(agi)
        outcome.identity = identity
        # shown live meanwhile: no caller waits for the wallboard
        outcome.live_start = asyncio.ensure_future(self._record_start(agi, identity, outcome))
        if identity.status is CallerStatus.WITHHELD:
            raise RouteToHuman(CallReason.WITHHELD_NUMBER, prompt="unknown_caller")
        if identity.status is CallerStatus.UNKNOWN:
            raise RouteToHuman(CallReason.UNKNOWN_CALLER, prompt="unknown_caller")
        if identity.handset:
            await self._emergency(agi, outcome, CallReason.HANDSET_EMERGENCY, "handset")
        if identity.no_menu and identity.status is CallerStatus.ELDER:
            raise RouteToHuman(CallReason.NO_MENU_ELDER)
        language = identity.language
        if self.speech is not None:
            outcome.spoken = SpokenMenu(self.speech, agi)
        greeting = "welcome_family" if identity.status is CallerStatus.FAMILY else "welcome"
        early = await agi.stream_file(
            self.ctx.prompts.path(greeting, language), menu_escape_digits()
        )
        early_digit = early.digit
        if identity.household:
            identity = await self._choose_member(agi, outcome, identity, early_digit)
            outcome.identity, language, early_digit = identity, identity.language, None
        service = await self._choose_service(agi, language, outcome, identity, early_digit)
        await self._create_order(agi, identity, service, outcome)
        await self._announce_order(agi, language, outcome)

    async def _identify(self, agi: AgiSession) -> CallerIdentity:
        """The caller: a handset line from memory (an emergency waits for no query,
        ``ivr/handset_lines.py``), anyone else from the registry."""
        number = normalize(agi.env.callerid, self.ivr.local_area_code)
        language = self.ivr.default_language
        handset = self.ctx.handsets.identity_of_number(number, language)
        if handset is not None:
            return handset
        found = await storage_step(
            self.ctx.batched,  # the caller waits for it
            lambda session: identify_number(session, number, default_language=language),
            log, "registry unavailable for caller %s", mask(agi.env.callerid))
        if found.value is not None:
            return found.value
        raise RouteToHuman(CallReason.REGISTRY_UNAVAILABLE, prompt="system_busy")

    async def _choose_member(
        self, agi: AgiSession, outcome: CallOutcome, identity: CallerIdentity,
        early_digit: str | None,
    ) -> CallerIdentity:
        """Which elder of the household is calling: key n for the n-th registered."""
        members: tuple[HouseholdMember, ...] = identity.household

        def member(digits: str) -> HouseholdMember | None:
            if digits.isdigit() and 1 <= int(digits) <= len(members):
                return members[int(digits) - 1]
            return None

        chosen = await self._ask(agi, identity.language, outcome, "household_choose", member,
                                 pending=early_digit)
        return identity.as_member(chosen)

    async def _choose_service(
        self, agi: AgiSession, language: str, outcome: CallOutcome, identity: CallerIdentity,
        early_digit: str | None,
    ) -> ServiceType:
        """The service confirmed; the card's balances (4) or a choice taken back each count
        as a turn, and more than MAX_RECHOOSE of them reach a human."""
        rechosen = 0
        pending = early_digit
        while True:
            choice = await self._ask(agi, language, outcome, "menu_main", main_choice,
                                     pending=pending, intent_keys=MAIN_INTENT_KEYS)
            pending = None
            if choice is Choice.BALANCE:
                assert identity.elder_id is not None
                await read_card(agi, self.ctx, identity.elder_id, language)
            elif await self._confirm(agi, language, outcome, choice):
                return choice
            rechosen += 1
            if rechosen > MAX_RECHOOSE:
                raise RouteToHuman(CallReason.UNDECIDED)

    async def _confirm(
        self, agi: AgiSession, language: str, outcome: CallOutcome, service: ServiceType
    ) -> bool:
        answers = {CONFIRM_KEY: True, RECHOOSE_KEY: False}
        return await self._ask(agi, language, outcome, f"confirm_{service.value}", answers.get,
                               intent_keys=CONFIRM_INTENT_KEYS)

    async def _ask(
        self, agi: AgiSession, language: str, outcome: CallOutcome, prompt: str,
        accept: Callable[[str], T | None], *, pending: str | None = None,
        intent_keys: dict[str, str] | None = None,
    ) -> T:
        """Ask ``prompt`` until ``accept`` makes a value of the answer. At every question 0
        reaches a human and 9 is an emergency; silence or a wrong key hears one short
        re-prompt (no_input, invalid_input), and a second one, or the call's
        ``menu_attempts``-th in all, goes to a human."""
        retry: str | None = None
        while True:
            if pending is not None:
                digits, pending = pending, None
            else:
                digits = await self._menu_input(agi, language, outcome, prompt, intent_keys,
                                                retry)
            digits = digits.strip()[:1]
            if digits == OPERATOR_KEY:
                raise RouteToHuman(CallReason.CALLER_REQUEST)
            if digits == EMERGENCY_KEY:
                await self._emergency(agi, outcome, CallReason.CALLER_EMERGENCY, "phone")
            value = accept(digits) if digits else None
            if value is not None:
                return value
            kind = CallReason.INVALID_INPUT if digits else CallReason.NO_INPUT
            outcome.strikes.append(kind)
            if retry is not None or len(outcome.strikes) >= self.ivr.menu_attempts:
                raise RouteToHuman(kind)
            retry = kind

    async def _menu_input(
        self, agi: AgiSession, language: str, outcome: CallOutcome, prompt: str,
        intent_keys: dict[str, str] | None, retry: str | None,
    ) -> str:
        """The caller's answer as keypad digits: spoken or keyed while speech works (for a
        question with spoken answers, ``intent_keys``), else keyed at the keypad menu. After
        a miss (``retry``) the keypad hears only the short re-prompt, which listens too.
        Speech not understood is asked again once, then a human."""
        spoken = outcome.spoken if intent_keys is not None else None
        if spoken is not None and spoken.available:
            if retry is not None:
                explain = "no_speech" if retry == CallReason.NO_INPUT else retry
                await agi.stream_file(self.ctx.prompts.path(explain, language))
                retry = None  # said; the spoken question follows, or the full keypad menu
            assert intent_keys is not None
            while spoken.available:
                answer = await spoken.ask(f"{prompt}_spoken", language, intent_keys)
                if answer.kind != "not_understood":
                    if answer.kind != "unavailable":
                        return answer.keys(intent_keys)
                    break
                outcome.misheard += 1
                if outcome.misheard >= MAX_MISHEARD:
                    raise RouteToHuman(CallReason.SPEECH_NOT_UNDERSTOOD)
                await agi.stream_file(self.ctx.prompts.path("say_again", language))
        if retry is not None:
            reply = await agi.get_data(self.ctx.prompts.path(retry, language),
                                       RETRY_TIMEOUT_MS, 1)
        else:
            reply = await agi.get_data(self.ctx.prompts.path(prompt, language),
                                       self.ivr.menu_timeout_ms, 1)
        return reply.digits

    # -- orders ---------------------------------------------------------------------------

    @staticmethod
    def _requested_by(identity: CallerIdentity) -> str | None:
        return identity.relation if identity.status is CallerStatus.FAMILY else "elder"

    async def _create_order(
        self,
        agi: AgiSession,
        identity: CallerIdentity,
        service: ServiceType,
        outcome: CallOutcome,
        source: str = "phone",
    ) -> None:
        assert identity.elder_id is not None
        requested_by = self._requested_by(identity)
        elder_id = identity.elder_id
        uniqueid = agi.env.uniqueid

        def announced(order_no: str) -> OrderCreated:
            return OrderCreated(order_no=order_no, service=service.value, elder_id=elder_id,
                                source=source, uniqueid=uniqueid, place=identity.place)

        together = service is not ServiceType.EMERGENCY  # sent in a batch
        stored = await storage_step(
            # the caller waits for it
            (lambda: self.ctx.batched(write=True)) if together else self.ctx.urgent_writing,
            lambda session: create_announced_order(
                session, elder_id=elder_id, service=service, source=source,
                call_uniqueid=uniqueid, requested_by=requested_by, at=self.ctx.now(),
                event_of=announced, together=together),
            log, "order not stored for call %s", uniqueid)
        if stored.value is None:
            raise RouteToHuman(CallReason.STORAGE_UNAVAILABLE, prompt="system_busy")
        order, announcement = stored.value
        outcome.order_id, outcome.order_no = order.id, order.order_no
        outcome.disposition, outcome.reason = CallDisposition.ORDER, service
        await self.ctx.live.publish_stored(announcement)
        if service is not ServiceType.EMERGENCY and self.ctx.dispatcher is not None:
            self.ctx.dispatcher.order_created(order.id)

    async def _emergency(
        self, agi: AgiSession, outcome: CallOutcome, reason: CallReason, source: str
    ) -> None:
        """An emergency: straight to the operators, no menu; its order (top priority) is
        stored meanwhile and reaches the screens and the family escalation once stored."""
        identity = outcome.identity
        assert identity is not None and identity.elder_id is not None
        outcome.emergency_order = self.ctx.emergency_orders.store(EmergencyCall(
            uniqueid=agi.env.uniqueid, linkedid=outcome.linkedid, channel=agi.env.channel,
            caller=identity.number, caller_name=agi.env.calleridname, reason=reason.value,
            elder_id=identity.elder_id, requested_by=self._requested_by(identity),
            source=source, place=identity.place))
        raise RouteToHuman(reason, prompt="emergency", priority=EMERGENCY_QUEUE_PRIORITY)

    async def _announce_order(self, agi: AgiSession, language: str, outcome: CallOutcome) -> None:
        assert outcome.order_no is not None
        await agi.set_variable("HOTLINE_ORDER_NO", outcome.order_no)
        await agi.set_variable(ROUTE_VARIABLE, "done")
        outcome.order_announced_at = self.ctx.now()
        await agi.stream_file(self.ctx.prompts.path("order_number_is", language))
        for repeat in range(MAX_ORDER_REPEATS + 1):
            for digit_prompt in self.ctx.prompts.digits(outcome.order_no, language):
                await agi.stream_file(digit_prompt)
            if repeat == MAX_ORDER_REPEATS:
                break
            reply = await agi.get_data(self.ctx.prompts.path("order_repeat", language),
                                       ORDER_REPEAT_TIMEOUT_MS, 1)
            if reply.digits != REPEAT_KEY:
                break
        await agi.stream_file(self.ctx.prompts.path("order_goodbye", language))

    # -- endings --------------------------------------------------------------------------

    async def _route_to_human(
        self, agi: AgiSession, outcome: CallOutcome, route: RouteToHuman
    ) -> None:
        outcome.disposition, outcome.reason = CallDisposition.OPERATOR, route.reason
        if agi.hungup:
            return
        if route.priority == 0 and self._after_hours():
            await self._to_message(agi, outcome, route)
            return
        outcome.screen_pop = asyncio.ensure_future(self._screen_pop(agi, outcome, route))
        # on a disaster minute the pop waits for a busy database; the emergency does not
        await asyncio.wait({outcome.screen_pop},
                           timeout=EMERGENCY_POP_WAIT_S if route.priority > 0 else None)
        try:
            await agi.set_variable(REASON_VARIABLE, route.reason)
            await agi.set_variable("HOTLINE_PRIORITY", str(route.priority))
            if outcome.identity is not None and outcome.identity.elder_id is not None:
                await agi.set_variable("HOTLINE_ELDER_ID", str(outcome.identity.elder_id))
            await agi.set_variable(ROUTE_VARIABLE, "operator")
            language = outcome.identity.language if outcome.identity else self.ivr.default_language
            # the dialplan picks the queue's hold class (musiconhold.conf) in this language
            await agi.set_variable("HOTLINE_LANGUAGE", self.ctx.prompts.recorded_language(language))
            if route.priority == 0 and route.prompt != QUEUE_REASSURANCE:
                # only an explanation plays first; the reassurance (to_operator, or emergency
                # above priority 0) is the hold class's announcement while operators are rung
                await agi.stream_file(self.ctx.prompts.path(route.prompt, language))
        except AgiHangup:
            pass

    def _after_hours(self) -> bool:
        """Outside ``[ivr] operator_hours`` (local time): no operator answers a caller who is
        not in an emergency."""
        hours = self.ivr.operator_hours
        if hours is None:
            return False
        local = self.ctx.now().astimezone(ZoneInfo(self.ctx.settings.dispatch.timezone))
        return not is_open(hours[0], hours[1], local.time())

    async def _to_message(self, agi: AgiSession, outcome: CallOutcome, route: RouteToHuman
                          ) -> None:
        """After hours: the dialplan's message context instead of the operators' queue."""
        outcome.disposition = CallDisposition.MESSAGE
        language = outcome.identity.language if outcome.identity else self.ivr.default_language
        try:
            await agi.set_variable(REASON_VARIABLE, route.reason)
            await agi.set_variable("HOTLINE_LANGUAGE", self.ctx.prompts.recorded_language(language))
            await agi.set_variable(ROUTE_VARIABLE, "message")
        except AgiHangup:
            pass

    async def _screen_pop(
        self, agi: AgiSession, outcome: CallOutcome, route: RouteToHuman
    ) -> None:
        """Put who is calling on the operators' screens before the call reaches them, and
        give an open page of the region a moment to show it (``ivr.pop_delivery``)."""
        identity = outcome.identity
        place = await publish_screen_pop(
            self.ctx, uniqueid=agi.env.uniqueid, linkedid=outcome.linkedid, reason=route.reason,
            priority=route.priority, caller=identity.number if identity else agi.env.callerid,
            caller_status=identity.status.value if identity else "unidentified",
            relation=identity.relation if identity else None, order_no=outcome.order_no,
            elder_id=identity.elder_id if identity else None,
            household=[m.elder_id for m in identity.household] if identity else [],
        )
        if self.ctx.screens is not None:
            shown = await self.ctx.screens.shown(agi.env.uniqueid, place)
            if shown is not None:
                POPS_SHOWN.labels("in_time" if shown else "late").inc()

    async def _record_start(
        self, agi: AgiSession, identity: CallerIdentity, outcome: CallOutcome
    ) -> None:
        """Show the call live; its database record is written once, when it ends."""
        await self.ctx.live.call_started(CallStarted(
            uniqueid=agi.env.uniqueid, channel=agi.env.channel, status=identity.status.value,
            elder_id=identity.elder_id, caller=mask(identity.number), place=identity.place))

    async def _finish(self, agi: AgiSession, outcome: CallOutcome) -> None:
        identity = outcome.identity
        # an emergency's pop may follow its queue entry; the live call shows before it ends
        await _settled(outcome.screen_pop, "screen pop", agi.env.uniqueid)
        await _settled(outcome.live_start, "live start", agi.env.uniqueid)
        if outcome.emergency_order is not None:  # the call record points to its order
            order = await stored_or_spooled(outcome.emergency_order)
            if order is not None:
                outcome.order_id, outcome.order_no = order.id, order.order_no
        if (outcome.disposition is CallDisposition.ABANDONED and identity is not None
                and identity.number):
            outcome.reason = CallReason.CALLBACK_NEEDED
            await self.ctx.live.publish(CallbackNeeded(
                elder_id=identity.elder_id, number=identity.number, uniqueid=agi.env.uniqueid,
                place=identity.place))
        uniqueid = agi.env.uniqueid
        record: dict[str, Any] = dict(
            uniqueid=uniqueid, linkedid=outcome.linkedid, channel=agi.env.channel,
            direction="inbound", caller_number=identity.number if identity else None,
            identity_status=identity.status.value if identity else "unidentified",
            elder_id=identity.elder_id if identity else None, started_at=outcome.started_at,
            ended_at=self.ctx.now(), disposition=outcome.disposition, reason=outcome.reason,
            order_id=outcome.order_id, answered_at=outcome.answered_at,
            order_announced_at=outcome.order_announced_at)
        await self.ctx.emergency_orders.store_call_record(record)
        await self.ctx.live.call_ended(CallEnded(
            uniqueid=agi.env.uniqueid, disposition=outcome.disposition, reason=outcome.reason))
        log.info(
            "call %s from %s: %s (%s)%s",
            agi.env.uniqueid,
            mask(identity.number if identity else agi.env.callerid),
            outcome.disposition,
            outcome.reason,
            f" order {outcome.order_no}" if outcome.order_no else "",
        )


def linkedid_argument(args: tuple[str, ...]) -> str | None:
    """The linkedid the dialplan passes as the script's first argument, if it is one (a
    uniqueid's characters only); None to ask the channel for it."""
    text = args[0].strip() if args else ""
    return text if is_uniqueid(text) else None


async def _settled(task: asyncio.Task[None] | None, what: str, uniqueid: str) -> None:
    """Wait for a step the call went on without; its failure is logged, never raised."""
    if task is None:
        return
    try:
        await task
    except Exception:
        log.exception("%s of call %s failed", what, uniqueid)
