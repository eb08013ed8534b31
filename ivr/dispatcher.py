"""The dispatcher: offers orders to vendors and calls elders back, through AMI Originate.

Flow of one attempt: ``plan`` writes it to the database (scheduled) and to the Redis schedule;
when due, one engine claims it in the database and sends ``Originate`` (Async, ActionID
``hotline-oc-<attempt id>``, caller-ID 12349, the attempt in channel variables). The
OriginateResponse settles calls nobody answered; an answered call reaches the dialplan, which
hands it to this engine's FastAGI flow (vendor_offer or quality_callback) for the outcome.
After every outcome the next step is planned from what the database holds.

Crash safety: every engine sweeps regularly. It refills the Redis schedule from the database,
settles attempts whose engine never reported (``lost``), and plans orders left without a next
step. OriginateResponse events are broadcast to every AMI session, so an attempt dialled by an
engine that died is settled by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import random
import socket
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from phonenumbers import NumberParseException
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch import outbound
from dispatch.care_calls import (
    CarePolicy,
    escalating_rounds,
    inside_hours,
    open_welfare_check,
    plan_next_round_call,
)
from dispatch.care_plans import CareHours, due_rounds, open_campaign_rounds, open_plan_rounds
from dispatch.charging import ChargeError, SubsidyRule, charge_order, uncharged_orders
from dispatch.console_events import DispatchEscalated, OrderCreated
from dispatch.ledger import month_of, to_fen
from dispatch.models import CallPurpose, OfferOutcome
from dispatch.offers import NextStep, OfferPolicy, accept, plan_offers, record_outcome
from dispatch.outbound import Attempt, Caps, Claim
from dispatch.overdue import overdue_alerts, stalled_orders
from dispatch.phones import mask, national
from dispatch.quality import CallbackPolicy, plan_next_callback
from dispatch.retry_policy import outcome_of_reason
from dispatch.vendor_quality import refresh_rank_scores
from dispatch.vouchers import credit_elder, uncredited
from ivr.ami.link import AmiLink
from ivr.ami.messages import AmiMessage, OriginateOutcome
from ivr.ami.placing import LOST, NOT_SENT, REFUSED, place_call
from ivr.call_schedule import CallSchedule
from ivr.config import Settings
from ivr.context import EngineContext
from ivr.dialplan_contract import ChannelVar, Context
from ivr.event_places import order_place
from ivr.line_handover import HANDOVER_S, LineHandovers
from ivr.micro_batch import MicroBatch
from ivr.periodic import repeat
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)

ACTION_PREFIX = "hotline-oc-"
CONTEXT_OF = {CallPurpose.VENDOR_OFFER: Context.VENDOR_OFFER,
              CallPurpose.QUALITY_CALLBACK: Context.QUALITY_CALLBACK,
              CallPurpose.CARE_CALL: Context.CARE_CALL}
CAP_RETRY_S = 0.5  # real seconds before a claim refused by a channel cap is tried again
TAKEN = "taken"  # a claim that took its line
PROMISE_TRIES = 4  # due rounds tried, oldest first, for a line about to free
HANDOVER = timedelta(seconds=HANDOVER_S)
LOST_MARGIN_S = 30.0  # clock seconds past the ring timeout before an attempt counts as lost
REFILL_HORIZON_S = 7 * 86_400
CHARGE_LOOKBACK_D = 31  # completed orders the sweep still charges if their charge is missing
CHARGE_RETRY_S = 3600.0  # a refused charge (no price, no rule) is tried again after this
BATCH_MOST = 200  # orders planned, or attempts claimed, in one transaction


def dialable(number_e164: str) -> str | None:
    """The digits to put in the dial template, or None for a stored number that is not a
    phone number (it must never reach the dial string)."""
    try:
        digits = national(number_e164)
    except NumberParseException:
        return None
    return digits if digits.lstrip("+").isdigit() and digits.isascii() else None


def subsidy_rules(settings: Settings) -> dict[str, SubsidyRule]:
    """``[money.categories]`` as the charging rules."""
    return {category: SubsidyRule(voucher_fen=to_fen(terms.voucher_yuan),
                                  carry_over=terms.carry_over, share=terms.share)
            for category, terms in settings.money.categories.items()}


def engine_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def attempt_of_action(action_id: str) -> int | None:
    """The attempt id in one of our ActionIDs, else None (another client's action)."""
    if not action_id.startswith(ACTION_PREFIX):
        return None
    tail = action_id[len(ACTION_PREFIX):]
    return int(tail) if tail.isdigit() else None


@dataclass
class _Slot:
    """Whether the task running this code holds one of the dispatcher's background slots."""

    held: bool = False


_SLOT: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar("dispatch_slot",
                                                                     default=None)


class Dispatcher:
    """One per engine process; any number of engines may share Asterisk, Redis and database."""

    def __init__(self, ctx: EngineContext, ami: AmiLink | None, redis_client: Any) -> None:
        self.ctx = ctx
        self.ami = ami
        self.settings = ctx.settings.dispatch
        self.tz = ZoneInfo(self.settings.timezone)
        self.engine_id = engine_id()
        self.rng = random.Random()
        self.schedule = CallSchedule(redis_client, ctx.settings.redis.key_prefix,
                                     self._due_in_database)
        self._dialling: set[int] = set()
        self._next_rank_refresh = ctx.clock.now() + self.settings.rank_refresh_s
        self.sweeps = 0  # sweeps completed: each one has seen every due or stalled call
        # background steps at once: half the database pool, the rest is the call path's
        self._work = asyncio.Semaphore(max(1, ctx.settings.database.pool_size // 2))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self.offer_policy = OfferPolicy(
            accept_within_s=self.settings.accept_within_s,
            arrival_window_s=self.settings.arrival_window_s,
            retry=dict(self.settings.retry), jitter=self.settings.jitter,
            selection=self.settings.selection, tz=self.tz,
        )
        self.callback_policy = CallbackPolicy(
            delay_s=self.settings.callback_delay_s, retry_s=self.settings.callback_retry_s,
            tries=self.settings.callback_tries, allowed_from=self.settings.callback_from,
            allowed_until=self.settings.callback_until, tz=self.tz,
        )
        self.rules = subsidy_rules(ctx.settings)
        self._refused: dict[int, float] = {}  # refused charge -> when to try it again
        self._care_filling = False  # one count-then-plan of caring calls at a time
        self._care_refill = False  # a call ended during a fill: it looks once more
        self._care_backlog = False  # due caring calls may be waiting for a line
        self.handovers = LineHandovers()
        # a burst of orders is planned, and its attempts claimed, a batch at a time
        self._offer_plans: MicroBatch[int, NextStep | None] = MicroBatch(
            self._plan_offers, BATCH_MOST, NextStep())
        self._claims: MicroBatch[int, Claim | None] = MicroBatch(
            self._claim_batch, BATCH_MOST, None)
        self._promising = asyncio.Lock()  # one promise planned at a time: each its own round
        care = ctx.settings.care
        self.care_policy = CarePolicy(
            retry_s=care.retry_s, tries=care.tries,
            hours=CareHours(self.tz, care.allowed_from, care.allowed_until))

    # -- life cycle ------------------------------------------------------------------------

    def attach_ami(self, ami: AmiLink) -> None:
        """Dial through ``ami``, settle attempts from the OriginateResponses it sees, and start
        the loops. Without an AMI link the engine dials nothing; orders wait in the database
        for an engine that can."""
        self.ami = ami
        ami.on_event("OriginateResponse", self._on_originate_response)
        if not self._loops:
            self._loops = [asyncio.create_task(self._due_loop()),
                           asyncio.create_task(self._sweep_loop())]

    async def close(self) -> None:
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)
        await self._offer_plans.close()
        await self._claims.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any], bounded: bool = True) -> None:
        """Run ``coro`` in the background, at most ``_work``'s bound of them at once if
        ``bounded``: a burst of work queues here, not on the database pool. Work that is
        planned and claimed in batches (a new order's first offer) is not bounded: its
        batches hold one session each, and the more it gathers the fewer they are."""
        task = asyncio.create_task(self._bounded(coro) if bounded else coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _bounded(self, coro: Coroutine[Any, Any, Any]) -> None:
        slot = _Slot()
        try:
            await self._work.acquire()
            slot.held = True
            _SLOT.set(slot)
            await coro
        finally:
            if slot.held:
                self._work.release()
            coro.close()  # cancelled while waiting its turn: it never started

    @contextlib.asynccontextmanager
    async def _slot_lent(self) -> AsyncIterator[None]:
        """While a call rings (no database work, up to the ring timeout), the background
        slot of the task placing it serves other work; it is taken back afterwards."""
        slot = _SLOT.get()
        if slot is None or not slot.held:
            yield
            return
        self._work.release()
        slot.held = False
        try:
            yield
        finally:
            await self._work.acquire()
            slot.held = True

    # -- entry points for the call flows ---------------------------------------------------

    def order_created(self, order_id: int) -> None:
        """A new order was committed: offer it to a vendor now."""
        if self.ami is None:
            return
        self._spawn(self.plan(order_id, CallPurpose.VENDOR_OFFER), bounded=False)

    def attempt_settled(self, attempt: Attempt) -> None:
        """A flow recorded an attempt's outcome: take the order's (or the round's) next
        step."""
        self._spawn(self.next_step(attempt))

    def line_until_hangup(self, attempt_id: int, uniqueid: str) -> None:
        """The attempt was answered on channel ``uniqueid``: it holds its trunk line until
        that channel hangs up, outcome or not; then the line may go to a waiting caring
        call. (Both the engine that dialled and the one running the call's flow watch.)"""
        async def hung_up() -> None:
            successor = self.handovers.hung_up(attempt_id)
            taken = None if successor is None else await self.dial(successor, freeing=attempt_id)
            if taken is None:
                await self._mark_hung_up(attempt_id)
            if taken != TAKEN and self._care_backlog:
                await self.fill_care_lines()

        self.handovers.answered(attempt_id)
        self.ctx.hangups.when_hung_up(uniqueid, f"attempt {attempt_id}", hung_up)

    async def _mark_hung_up(self, attempt_id: int) -> None:
        await storage_step(
            self.ctx.writing,
            lambda session: outbound.mark_hung_up(session, attempt_id, self.ctx.now()),
            log, "hangup of attempt %s not stored (its line is counted until its lapse)",
            attempt_id)

    def goodbye_started(self, attempt_id: int) -> None:
        """An answered caring call has its answer stored and says goodbye: while rounds wait
        for a line, plan the one that takes this call's line at its hangup."""
        if self._care_backlog and self.handovers.holding(attempt_id):
            # not through ``_spawn``: promises take turns on their own lock, and one waiting
            # its turn must not hold a background slot other work needs meanwhile
            task = asyncio.create_task(self._promise_line(attempt_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def order_completed(self, order_id: int) -> None:
        """A worker reported an order done: charge it (and plan its quality callback)."""
        if self.ctx.settings.money.charge:
            self._spawn(self.charge(order_id))

    async def charge(self, order_id: int) -> None:
        """Post the order's charge once; a charge that cannot be made (no price, no rule)
        is logged the first time and tried again by the sweep an hour later."""
        try:
            await storage_step(
                self.ctx.writing,
                lambda session: charge_order(session, order_id, self.rules, self.tz,
                                             self.ctx.now()),
                log, "charge of order %s not stored (the sweep retries)", order_id)
        except ChargeError as exc:
            if order_id not in self._refused:
                log.warning("order %s not charged: %s", order_id, exc)
            self._refused[order_id] = self.ctx.clock.now() + CHARGE_RETRY_S
        else:
            self._refused.pop(order_id, None)

    def callback_scheduled(self, attempt_id: int, due_at: datetime) -> None:
        self._spawn(self.schedule.add([(attempt_id, due_at.timestamp())]))

    # -- planning --------------------------------------------------------------------------

    async def next_step(self, attempt: Attempt) -> None:
        """After ``attempt``'s outcome: its round's next call, or its order's; then the
        line it held goes to a waiting caring call, if any."""
        if attempt.round_id is not None:
            await self.plan_round(attempt.round_id)
        elif attempt.order_id is not None:
            await self.plan(attempt.order_id, attempt.purpose)
        if not self._care_backlog:
            return
        if attempt.purpose is CallPurpose.CARE_CALL and self.handovers.holding(attempt.id):
            self.goodbye_started(attempt.id)  # its goodbye plays: plan who takes the line
        else:
            await self.fill_care_lines()

    async def _promise_line(self, freed: int) -> None:
        """Plan the oldest due round's call for the line ``freed`` will leave at its hangup
        (``ivr/line_handover.py``); dialled at once if that hangup came meanwhile."""
        async with self._promising:
            successor = await self._plan_successor(freed)
        if successor is not None and not self.handovers.promise(freed, successor):
            await self.dial(successor)

    async def _plan_successor(self, freed: int) -> int | None:
        now = self.ctx.now()
        if not self.handovers.holding(freed) or not inside_hours(now, self.care_policy.hours):
            return None
        found = await storage_step(self.ctx.sessions,
                                   lambda session: due_rounds(session, now, PROMISE_TRIES),
                                   log, "due caring calls not read (the sweep retries)")
        for round_id, _due in found.value or ():
            step = await self._round_step(round_id, not_before=now + HANDOVER)
            if step is not None and step.attempt_id is not None:
                return step.attempt_id
        return None

    async def plan_round(self, round_id: int) -> None:
        """A caring-call round's next call, or its welfare check when nobody answered."""
        step = await self._round_step(round_id)
        if step is not None:
            await self._take(step, self.ctx.now())

    async def _round_step(self, round_id: int, not_before: datetime | None = None
                          ) -> NextStep | None:
        """Plan the round's next call (its attempt row, not yet dialled, due no earlier than
        ``not_before``); opens the welfare check of a round that has just escalated."""
        now = self.ctx.now()
        planned = await storage_step(
            self.ctx.writing,
            lambda session: plan_next_round_call(session, round_id, now, self.care_policy,
                                                 not_before),
            log, "next call of care round %s not planned (the sweep retries)", round_id)
        step = planned.value
        if step is not None and step.escalated:
            await self._welfare_check(round_id)
        return step

    async def fill_care_lines(self) -> None:
        """Start as many due caring-call rounds as the caring calls' share of the trunk has
        lines free (none outside the allowed hours). Called by the sweep and whenever a call
        ends, so a freed line is taken at once, while rounds beyond the free lines wait in
        the database instead of queueing for a claim. Calls made while a fill runs do not
        wait for it: they ask it to look once more before it ends."""
        if self._care_filling:
            self._care_refill = True
            return
        self._care_filling = True
        try:
            self._care_refill = True
            while self._care_refill:
                self._care_refill = False
                await self._fill_once()
        finally:
            self._care_filling = False

    async def _fill_once(self) -> None:
        now = self.ctx.now()
        if not inside_hours(now, self.care_policy.hours):
            return
        cap = await self._care_lines()

        async def free_rounds(session: AsyncSession) -> tuple[int, list[int]]:
            free = cap - await outbound.line_demand(session, CallPurpose.CARE_CALL, now,
                                                    self.ctx.longest_call)
            due = await due_rounds(session, now, max(free, 1))
            return free, [round_id for round_id, _due in due]

        found = await storage_step(self.ctx.sessions, free_rounds, log,
                                   "due caring calls not read (the sweep retries)")
        free, due = found.value or (0, [])
        # rounds still wait: every call that ends offers its line to them
        self._care_backlog = len(due) >= max(free, 1)
        for round_id in due if free > 0 else []:
            step = await self._round_step(round_id)
            if step is not None:
                self._spawn(self._take(step, self.ctx.now()))  # due now: dialled at once

    async def _care_lines(self) -> int:
        """Trunk lines caring calls may hold now: the trunk less the lines ringing for
        emergencies, less the lines they leave free for other calls."""
        return max(0, await self._trunk_lines() - self.ctx.settings.care.reserve_channels)

    async def _trunk_lines(self) -> int:
        """Trunk lines the dispatcher gives out now: emergency lines are not its to give."""
        return max(0, self.settings.trunk_channels - await self._priority_lines())

    async def _priority_lines(self) -> int:
        """Emergency call-backs and family alerts on the trunk now, every engine's."""
        lines = self.ctx.priority_lines
        return await lines.in_use() if lines is not None else 0

    async def _welfare_check(self, round_id: int) -> None:
        """Open the unreached elder's welfare-check emergency: the family escalation starts,
        and the operators' worklist and consoles show it."""
        opened = await storage_step(
            self.ctx.writing,
            lambda session: open_welfare_check(session, round_id, self.ctx.now()),
            log, "welfare check of care round %s not opened (the sweep retries)", round_id)
        order = opened.value
        if order is None:
            return
        log.warning("care round %s: the elder was not reached; welfare check %s opened",
                    round_id, order.order_no)
        place = await order_place(self.ctx, order.id)
        await self.ctx.live.publish(OrderCreated(
            order_no=order.order_no or "", service=order.service.value,
            elder_id=order.elder_id, source=order.source.value, uniqueid=None, place=place))
        if self.ctx.on_emergency is not None:
            self.ctx.on_emergency(order.id, order.elder_id)

    async def plan(self, order_id: int, purpose: CallPurpose) -> None:
        """Plan the order's next offer (in a batch with the others being planned) or
        quality callback, and take it."""
        if purpose is CallPurpose.VENDOR_OFFER:
            step = await self._offer_plans.submit(order_id)
        else:
            now = self.ctx.now()
            step = (await storage_step(
                self.ctx.writing,
                lambda session: plan_next_callback(session, order_id, now,
                                                   self.callback_policy),
                log, "next step of order %s not planned (the sweep retries)", order_id)).value
        if step is None:
            return
        if step.escalated:
            await self.ctx.live.publish(DispatchEscalated(
                order_id=order_id, reason=step.escalated,
                place=await order_place(self.ctx, order_id)))
        await self._take(step, self.ctx.now())

    async def _plan_offers(self, order_ids: list[int]) -> dict[int, NextStep | None]:
        """One batch of ``plan``: None for each order if it was not stored. Its session is
        urgent, as a caller's: one batch serves up to ``BATCH_MOST`` elders, and behind the
        flows of the vendor calls already ringing it would wait for all of them."""
        now = self.ctx.now()
        planned = await storage_step(
            self.ctx.urgent_writing,
            lambda session: plan_offers(session, order_ids, now, self.offer_policy, self.rng),
            log, "next step of %d orders (order %s first) not planned (the sweep retries)",
            len(order_ids), order_ids[0])
        return dict(planned.value) if planned.value is not None else dict.fromkeys(order_ids)

    @property
    def caps(self) -> Caps:
        return Caps(longest_call=self.ctx.longest_call,
                    trunk_channels=self.settings.trunk_channels,
                    vendor_channels=self.settings.vendor_channels,
                    reserve={CallPurpose.CARE_CALL: self.ctx.settings.care.reserve_channels})

    async def _claim_batch(self, attempt_ids: list[int]) -> dict[int, Claim | None]:
        """One batch of claims (urgent, as a batch of plans): None for each attempt if
        nothing was stored."""
        claimed = await storage_step(
            self.ctx.urgent_writing, lambda session: outbound.claim_many(
                session, attempt_ids, engine_id=self.engine_id, at=self.ctx.now(),
                caps=self.caps, priority_lines=self._priority_lines),
            log, "%d attempts (attempt %s first) not claimed", len(attempt_ids),
            attempt_ids[0])
        return dict(claimed.value) if claimed.value is not None \
            else dict.fromkeys(attempt_ids)

    async def _take(self, step: NextStep, now: datetime) -> None:
        """Dial the planned attempt now if it is due, else put it on the schedule."""
        if step.attempt_id is None or step.due_at is None:
            return
        if step.due_at <= now:
            await self.dial(step.attempt_id)
        else:
            await self.schedule.add([(step.attempt_id, step.due_at.timestamp())])

    # -- dialling --------------------------------------------------------------------------

    async def dial(self, attempt_id: int, freeing: int | None = None) -> str | None:
        """Claim the attempt; if this engine won it, place the call and settle what AMI says.
        ``freeing``: the attempt whose line it takes, its hangup stored by the claim. How the
        claim went (``TAKEN``, or why not), or None if nothing was stored (already being
        dialled here, or no AMI link: it stays due)."""
        if attempt_id in self._dialling:
            return None
        self._dialling.add(attempt_id)
        try:
            return await self._dial(attempt_id, freeing)
        finally:
            self._dialling.discard(attempt_id)

    async def _dial(self, attempt_id: int, freeing: int | None = None) -> str | None:
        """Claim and dial; ``freeing``: the attempt whose hangup hands this one its line,
        stored by the claim. ``TAKEN``, the claim's refusal, or None if the claim (and so
        that hangup) was not stored."""
        if not getattr(self.ami, "connected", False):  # nothing can be sent: keep it due
            later = self.ctx.clock.now() + CAP_RETRY_S * self.ctx.clock.speed
            await self.schedule.add([(attempt_id, later)])
            return None
        if freeing is None:
            claim = await self._claims.submit(attempt_id)
        else:  # the hangup of ``freeing`` is stored with this claim, whatever its fate
            claim = (await storage_step(
                self.ctx.writing, lambda session: outbound.claim(
                    session, attempt_id, engine_id=self.engine_id, at=self.ctx.now(),
                    caps=self.caps, priority_lines=self._priority_lines, freeing=freeing),
                log, "attempt %s not claimed", attempt_id)).value
        if claim is None:
            return None
        if claim.attempt is None:
            if claim.refused == "gone":
                await self.schedule.remove(attempt_id)
            else:
                later = self.ctx.clock.now() + CAP_RETRY_S * self.ctx.clock.speed
                await self.schedule.add([(attempt_id, later)])
            return claim.refused
        await self.schedule.remove(attempt_id)
        await self._originate(claim.attempt)
        return TAKEN

    async def _originate(self, attempt: Attempt) -> None:
        dial = self.ctx.settings.dial
        template = dial.vendor if attempt.purpose is CallPurpose.VENDOR_OFFER else dial.elder
        number = dialable(attempt.number_e164)
        if number is None:
            log.error("attempt %s of order %s not dialled: the stored number %s is not a phone "
                      "number (vendor %s); moving on", attempt.id, attempt.order_id,
                      mask(attempt.number_e164), attempt.vendor_id)
            await self._settle(attempt, OfferOutcome.BAD_NUMBER, None)  # no retry rule
            return
        variables = {ChannelVar.ATTEMPT_ID: str(attempt.id)}
        if attempt.order_id is not None:
            variables[ChannelVar.ORDER_ID] = str(attempt.order_id)
        if attempt.round_id is not None:
            variables[ChannelVar.ROUND_ID] = str(attempt.round_id)
        async with self._slot_lent():
            placed = await place_call(
                self.ami, channel=template.format(number=number),
                context=CONTEXT_OF[attempt.purpose], exten="s", caller_id=dial.caller_id,
                timeout_ms=int(dial.ring_timeout_s * 1000),
                action_id=f"{ACTION_PREFIX}{attempt.id}", variables=variables)
        if placed.status == NOT_SENT:  # nothing dialled: back to the schedule, no outcome
            log.warning("attempt %s not sent (%s); dialled when the AMI link is back",
                        attempt.id, placed.error)
            await self._unclaim(attempt)
        elif placed.status == REFUSED:  # refused before any dialling: safe to settle
            log.error("Originate for attempt %s refused: %s", attempt.id, placed.error)
            await self._settle(attempt, OfferOutcome.FAILED, 0)
        elif placed.status == LOST:
            # Sent, fate unknown: another engine may see the response; else the sweep settles
            # it as lost. Never re-sent.
            log.warning("attempt %s to %s: no OriginateResponse (%s)", attempt.id,
                        mask(attempt.number_e164), placed.error)
        elif placed.outcome is not None:
            await self._on_outcome(attempt.id, placed.outcome)

    async def _unclaim(self, attempt: Attempt) -> None:
        back = await storage_step(self.ctx.writing,
                                  lambda session: outbound.unclaim(session, attempt.id), log,
                                  "attempt %s not put back (the sweep settles it)", attempt.id)
        if back.value:
            later = self.ctx.clock.now() + CAP_RETRY_S * self.ctx.clock.speed
            await self.schedule.add([(attempt.id, later)])

    async def _on_originate_response(self, event: AmiMessage) -> None:
        attempt_id = attempt_of_action(event.action_id)
        if attempt_id is None or attempt_id in self._dialling:
            return  # not ours, or this engine is awaiting it already
        await self._on_outcome(attempt_id, OriginateOutcome.from_event(event))

    async def _on_outcome(self, attempt_id: int, outcome: OriginateOutcome) -> None:
        async def unanswered(session: AsyncSession) -> Attempt | None:
            """The attempt to settle, or None: unknown, or answered (its flow settles it)."""
            attempt = await outbound.get_attempt(session, attempt_id)
            if attempt is not None and outcome.answered:
                await outbound.mark_answered(session, attempt_id, self.ctx.now(),
                                             outcome.uniqueid)
                return None
            return attempt

        if outcome.answered and outcome.uniqueid:
            self.line_until_hangup(attempt_id, outcome.uniqueid)

        found = await storage_step(self.ctx.writing, unanswered, log,
                                   "outcome of attempt %s not stored", attempt_id)
        if found.value is not None:
            await self._settle(found.value, outcome_of_reason(outcome.reason), outcome.reason)

    async def _settle(self, attempt: Attempt, outcome: OfferOutcome, reason: int | None
                      ) -> None:
        settled = await storage_step(
            self.ctx.writing,
            lambda session: record_outcome(session, attempt, outcome, self.ctx.now(), reason),
            log, "outcome of attempt %s not stored", attempt.id)
        if settled.value:
            await self.next_step(attempt)

    async def care_sweep(self, now: datetime) -> None:
        """Write today's caring-call rounds (once, whichever engine), start the rounds whose
        window has opened, and open the welfare checks a crash left unopened."""
        hours = self.care_policy.hours
        today = now.astimezone(hours.tz).date()

        async def open_today(session: AsyncSession) -> list[int]:
            await open_plan_rounds(session, today, hours)
            await open_campaign_rounds(session, today, hours)
            return await escalating_rounds(session)

        found = await storage_step(self.ctx.writing, open_today, log,
                                   "caring calls of %s not planned (the next sweep retries)",
                                   today)
        for round_id in found.value or ():
            await self._welfare_check(round_id)
        await self.fill_care_lines()

    async def accept_offer(self, attempt: Attempt) -> bool:
        """True if this vendor won the order; False if another did, or it was not stored."""
        won = await storage_step(
            self.ctx.writing,
            lambda session: accept(session, attempt, self.ctx.now(),
                                   self.settings.arrival_window_s),
            log, "acceptance of offer %s not stored", attempt.id)
        return bool(won.value)

    # -- loops -----------------------------------------------------------------------------

    async def _due_in_database(self, until: float) -> list[tuple[int, float]]:
        async with self.ctx.sessions() as session:
            rows = await outbound.due(session, datetime.fromtimestamp(until, tz=UTC), 5000)
        return [(attempt_id, due.timestamp()) for attempt_id, due in rows]

    async def _dial_due(self) -> None:
        for attempt_id in await self.schedule.due(self.ctx.clock.now()):
            if attempt_id not in self._dialling:
                self._spawn(self.dial(attempt_id))

    async def _due_loop(self) -> None:
        await repeat(self._dial_due, lambda: asyncio.sleep(self.settings.poll_s),
                     "reading the call schedule")

    async def _sweep_loop(self) -> None:
        await repeat(self.sweep, lambda: asyncio.sleep(self.settings.reconcile_s),
                     "dispatch sweep")

    async def sweep(self) -> None:
        """Repair what crashes and restarts left behind; raise overdue alerts."""
        now = self.ctx.now()
        await self.schedule.refill(now.timestamp() + REFILL_HORIZON_S)
        ring = self.ctx.settings.dial.ring_timeout_s + LOST_MARGIN_S
        async with self.ctx.sessions() as session:
            lost = await outbound.overdue_active(
                session, dialing_before=now - timedelta(seconds=ring),
                answered_before=now - timedelta(seconds=self.settings.offer_max_s))
            stalled = await stalled_orders(session, now)
        for attempt in lost:
            if attempt.id not in self._dialling:
                await self._settle(attempt, OfferOutcome.LOST, None)
        for order_id, purpose in stalled:
            await self.plan(order_id, purpose)
        await self.care_sweep(now)
        if self.ctx.settings.money.charge:
            await self.money_sweep(now)
        async with self.ctx.writing() as session:
            alerts = await overdue_alerts(session, now, self.settings)
        for alert in alerts:
            await self.ctx.live.publish(alert)
        if now.timestamp() >= self._next_rank_refresh:
            self._next_rank_refresh = now.timestamp() + self.settings.rank_refresh_s
            async with self.ctx.writing() as session:
                ranked = await refresh_rank_scores(session, at=now)
            log.info("vendor ranking refreshed: %d vendors scored", ranked)
        self.sweeps += 1

    async def money_sweep(self, now: datetime) -> None:
        """This month's vouchers for the elders not credited yet (a batch a sweep, once per
        elder whichever engine), and the charges of completed orders still missing."""
        month = month_of(now, self.tz)
        owed_vouchers = await storage_step(
            self.ctx.sessions, lambda session: uncredited(session, month, self.rules),
            log, "vouchers of %s not read (the next sweep retries)", month)
        for elder in owed_vouchers.value or []:
            # one elder a write: a caller's urgent write waits for one elder, not for 500
            credited = await storage_step(
                self.ctx.writing,
                lambda session, elder=elder: credit_elder(session, month, self.rules, elder,
                                                          now),
                log, "vouchers of %s not credited (the next sweep retries)", month)
            if not credited.ok:
                break
        at = self.ctx.clock.now()
        waiting = [order for order, retry_at in self._refused.items() if retry_at > at]
        async with self.ctx.sessions() as session:
            owed = await uncharged_orders(session, now - timedelta(days=CHARGE_LOOKBACK_D),
                                          skip=waiting)
        for order_id in owed:
            self._spawn(self.charge(order_id))
