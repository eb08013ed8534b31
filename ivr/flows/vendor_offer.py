"""FastAGI route ``vendor_offer``: a vendor answered the engine's call; offer them the order.

The vendor hears the service, the district and the arrival window, then: 1 accept, 2 decline,
9 hear it again. Every way out is an outcome on the attempt: accepted, declined, no_key, or
hangup (hung up mid-offer).
"""

from __future__ import annotations

import logging

from dispatch.console_events import OrderAccepted
from dispatch.models import OfferOutcome
from dispatch.offers import OfferDetails, offer_details
from dispatch.outbound import Attempt
from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.context import EngineContext
from ivr.flows.outbound_call import answered_attempt, ask, settle
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)

ACCEPT, DECLINE, REPEAT = "1", "2", "9"
ROUNDS = 2


class VendorOfferFlow:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    async def __call__(self, agi: AgiSession) -> None:
        attempt = await answered_attempt(agi, self.ctx)
        if attempt is None:
            await self._say(agi, "offer_withdrawn")
            return
        read = await storage_step(
            self.ctx.sessions.urgent,
            lambda session: offer_details(session, attempt.id,
                                          self.ctx.settings.dispatch.arrival_window_s),
            log, "offer %s unreadable", attempt.id)
        details = read.value
        if details is None:
            await settle(self.ctx, attempt, OfferOutcome.FAILED)
            return
        outcome: OfferOutcome | None = OfferOutcome.HANGUP
        try:
            key = await ask(agi, self.ctx, self._offer_prompts(details), ACCEPT + DECLINE,
                            ROUNDS, repeat_key=REPEAT)
            if key == ACCEPT:
                outcome = None  # accept_offer records it
                await self._accept(agi, details, attempt)
                return
            outcome = OfferOutcome.DECLINED if key == DECLINE else OfferOutcome.NO_KEY
            await self._say(agi, "offer_declined" if key == DECLINE else "offer_no_key")
        except AgiHangup:
            pass
        finally:
            if outcome is not None:
                await settle(self.ctx, attempt, outcome)

    async def _accept(self, agi: AgiSession, details: OfferDetails, attempt: Attempt) -> None:
        dispatcher = self.ctx.dispatcher
        won = dispatcher is not None and await dispatcher.accept_offer(attempt)
        if not won:
            await self._say(agi, "offer_withdrawn")
            return
        await self.ctx.live.publish(OrderAccepted(
            order_id=details.order_id, order_no=details.order_no, vendor_id=details.vendor_id,
            place=details.place))
        language = self.ctx.settings.ivr.default_language
        await agi.stream_file(self.ctx.prompts.path("offer_accepted", language))
        for path in self.ctx.prompts.digits(details.order_no, language):
            await agi.stream_file(path)
        await agi.stream_file(self.ctx.prompts.path("offer_accepted_end", language))

    def _offer_prompts(self, details: OfferDetails) -> list[str]:
        prompts = self.ctx.prompts
        language = self.ctx.settings.ivr.default_language
        paths = [prompts.path("offer_intro", language),
                 prompts.path(f"service_{details.service.value}", language)]
        district = f"district_{details.county_code}"
        if details.county_code and prompts.has_prompt(district, language):
            paths += [prompts.path("offer_district", language), prompts.path(district, language)]
        paths += [prompts.path("offer_within", language),
                  *prompts.number(details.arrival_minutes, language),
                  prompts.path("offer_minutes", language),
                  prompts.path("offer_keys", language)]
        return paths

    async def _say(self, agi: AgiSession, name: str) -> None:
        if agi.hungup:
            return
        try:
            language = self.ctx.settings.ivr.default_language
            await agi.stream_file(self.ctx.prompts.path(name, language))
        except AgiHangup:
            pass
