"""FastAGI route ``care_call``: the elder answered a caring call the hotline placed.

The elder is greeted by surname and honorific (张奶奶，您好！) where the surname is
recorded. A check-in asks: 1 I am well, 2 I need help (an operator calls back: a call-back
item on the worklist), 0 an operator now (the dialplan takes the call to the operator
queue). A companionship call, a reminder and a holiday greeting say their words (their own,
synthesised by ``ivr/care_words.py``, or the kind's recorded prompt) and offer 0 for an
operator. No key or a hang-up is an unanswered try: the dispatcher calls again after
``[care] retry_s`` and, after the last try, opens a welfare check.
"""

from __future__ import annotations

import logging

from dispatch.calls import CallDisposition, CallReason, record_call
from dispatch.care_calls import RoundCall, record_answer, round_call
from dispatch.console_events import CallbackNeeded
from dispatch.models import CareKind, OfferOutcome
from dispatch.outbound import Attempt
from ivr.agi.errors import AgiHangup
from ivr.agi.server import REASON_VARIABLE, ROUTE_VARIABLE
from ivr.agi.session import AgiSession
from ivr.care_words import CareWords
from ivr.context import EngineContext
from ivr.event_places import elder_place_of
from ivr.flows.outbound_call import answered_attempt, ask, settle
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)

ROUNDS = 2
WORDS = {CareKind.COMPANION: "care_companion", CareKind.REMINDER: "care_reminder",
         CareKind.GREETING: "care_holiday"}
ANSWER_OF_KEY = {"1": OfferOutcome.WELL, "2": OfferOutcome.HELP, "0": OfferOutcome.OPERATOR}


class CareCallFlow:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.words = CareWords(ctx.settings.care.words_dir, ctx.prompts)

    async def __call__(self, agi: AgiSession) -> None:
        attempt = await answered_attempt(agi, self.ctx)
        if attempt is None:
            return
        found = await storage_step(self.ctx.sessions.urgent,
                                   lambda s: round_call(s, attempt.id), log,
                                   "round of care call %s unreadable", attempt.id)
        care = found.value
        if care is None:
            await settle(self.ctx, attempt, OfferOutcome.FAILED)
            return
        language = self.ctx.prompts.recorded_language(care.language)
        started = self.ctx.now()
        outcome = OfferOutcome.HANGUP
        try:
            await self._greet(agi, care, language)
            if care.kind is CareKind.CHECK_IN:
                prompts = [self.ctx.prompts.path("checkin_question", language)]
                key = await ask(agi, self.ctx, prompts, "120", ROUNDS)
            else:
                key = await ask(agi, self.ctx, await self._words(care, language), "0", 1)
                key = key or "heard"
            if key is None:
                outcome = OfferOutcome.NO_KEY
                await agi.stream_file(self.ctx.prompts.path("goodbye", language))
                return
            outcome = ANSWER_OF_KEY.get(key, OfferOutcome.HEARD)
            await self._answered(agi, attempt, care, outcome, language, started)
        except AgiHangup:
            pass
        finally:
            if outcome in (OfferOutcome.HANGUP, OfferOutcome.NO_KEY):
                await settle(self.ctx, attempt, outcome)

    async def _greet(self, agi: AgiSession, care: RoundCall, language: str) -> None:
        """张奶奶，您好！ and the hotline's greeting; a plain greeting when the elder's surname
        is not recorded or the gender unknown."""
        prompts = self.ctx.prompts
        address = prompts.address(care.name, care.gender, language)
        for path in address:
            await agi.stream_file(path)
        greeting = "care_greeting_named" if address else "care_greeting"
        await agi.stream_file(prompts.path(greeting, language))

    async def _words(self, care: RoundCall, language: str) -> list[str]:
        """A reminder's or campaign's own words and "press 0 for help"; the kind's recorded
        prompt when it has none or they cannot be spoken."""
        prompts = self.ctx.prompts
        words = await self.words.path(care.message, language) if care.message else None
        if words is None:
            return [prompts.path(WORDS[care.kind], language)]
        return [words, prompts.path("care_help_key", language)]

    async def _answered(self, agi: AgiSession, attempt: Attempt, care: RoundCall,
                        outcome: OfferOutcome, language: str, started: object) -> None:
        """Keep the answer (and the round's end), then what it asks for. A call for help
        puts its call-back item on the worklist first: a round ended "help" always has its
        item (a crash in between calls the elder again rather than losing the request)."""
        if outcome is OfferOutcome.HELP:
            await self._call_back_item(agi, attempt, care)
        stored = await storage_step(
            self.ctx.urgent_writing, lambda s: record_answer(s, attempt, outcome, self.ctx.now()),
            log, "answer %s of care round %s not stored", outcome, care.round_id)
        if not stored.ok:
            log.error("care round %s: the answer is lost; the sweep calls again",
                      care.round_id)
        elif self.ctx.dispatcher is not None:
            self.ctx.dispatcher.goodbye_started(attempt.id)
        if outcome is OfferOutcome.HELP:
            await agi.stream_file(self.ctx.prompts.path("checkin_help", language))
        elif outcome is OfferOutcome.OPERATOR:
            await agi.set_variable(REASON_VARIABLE, CallReason.CARE_OPERATOR)
            await agi.set_variable("HOTLINE_LANGUAGE", language)
            await agi.set_variable(ROUTE_VARIABLE, "operator")
        elif outcome is OfferOutcome.WELL and care.kind is CareKind.CHECK_IN:
            await agi.stream_file(self.ctx.prompts.path("checkin_thanks", language))
        else:
            await agi.stream_file(self.ctx.prompts.path("goodbye", language))

    async def _call_back_item(self, agi: AgiSession, attempt: Attempt, care: RoundCall
                              ) -> None:
        """The elder asked for help: a call-back item on the operators' worklist (the call's
        record) and on their consoles."""
        now = self.ctx.now()
        await storage_step(
            self.ctx.urgent_writing,
            lambda session: record_call(
                session, uniqueid=agi.env.uniqueid, linkedid=None, channel=agi.env.channel,
                direction="outbound", caller_number=attempt.number_e164,
                identity_status="known", elder_id=care.elder_id, started_at=now,
                ended_at=now, disposition=CallDisposition.OPERATOR,
                reason=CallReason.CARE_HELP, answered_at=now),
            log, "call-back item of care round %s not stored", care.round_id)
        await self.ctx.live.publish(CallbackNeeded(
            elder_id=care.elder_id, number=attempt.number_e164, uniqueid=agi.env.uniqueid,
            place=await elder_place_of(self.ctx, care.elder_id)))
