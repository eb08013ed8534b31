"""FastAGI route ``quality_callback``: the elder answered the 回访 call; ask for a 1-5 rating.

A rating of 1 or 2 opens a complaint that the operators see at once. No key or a hang-up is
an outcome like an unanswered call: the dispatcher tries again later, within allowed hours.
"""

from __future__ import annotations

import logging

from dispatch.console_events import ComplaintOpened
from dispatch.models import OfferOutcome
from dispatch.outbound import Attempt
from dispatch.quality import record_rating
from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.context import EngineContext
from ivr.event_places import order_place
from ivr.flows.outbound_call import answered_attempt, ask, settle
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)

RATING_KEYS = "12345"
ROUNDS = 2


class QualityCallbackFlow:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    async def __call__(self, agi: AgiSession) -> None:
        attempt = await answered_attempt(agi, self.ctx)
        if attempt is None:
            return
        language = self.ctx.settings.ivr.default_language
        prompts = [self.ctx.prompts.path("rating_intro", language),
                   self.ctx.prompts.path("rating_keys", language)]
        outcome: OfferOutcome | None = OfferOutcome.HANGUP
        try:
            key = await ask(agi, self.ctx, prompts, RATING_KEYS, ROUNDS)
            if key is None:
                outcome = OfferOutcome.NO_KEY
                await agi.stream_file(self.ctx.prompts.path("goodbye", language))
                return
            outcome = None  # record_rating records it
            complaint = await self._record(attempt, int(key))
            if complaint is None:
                outcome = OfferOutcome.FAILED
            closing = "rating_sorry" if complaint else "rating_thanks"
            await agi.stream_file(self.ctx.prompts.path(closing, language))
        except AgiHangup:
            pass
        finally:
            if outcome is not None:
                await settle(self.ctx, attempt, outcome)

    async def _record(self, attempt: Attempt, rating: int) -> bool | None:
        stored = await storage_step(
            self.ctx.urgent_writing,
            lambda session: record_rating(session, attempt, rating, self.ctx.now()),
            log, "rating of order %s not stored", attempt.order_id)
        if not stored.ok:
            return None
        complaint = stored.value
        if complaint:
            await self.ctx.live.publish(ComplaintOpened(
                order_id=attempt.order_id, rating=rating,
                place=await order_place(self.ctx, attempt.order_id)))
        return complaint
