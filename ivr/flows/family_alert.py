"""FastAGI route ``family_alert``: a family member answers the engine's emergency call."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.console_events import FamilyAcknowledged, FamilyNoKey
from dispatch.escalations import has_call_event
from dispatch.orders import add_order_event
from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.context import EngineContext
from ivr.dialplan_contract import ChannelVar
from ivr.event_places import order_place

log = logging.getLogger(__name__)

ACK_KEY = "1"
ATTEMPTS = 2
ACK_TIMEOUT_MS = 10_000


class FamilyAlertFlow:
    """Tell the family member, ask for key 1, and record the acknowledgement."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    async def __call__(self, agi: AgiSession) -> None:
        order_id = _int(await agi.get_variable(ChannelVar.ORDER_ID))
        contact_id = _int(await agi.get_variable(ChannelVar.CONTACT_ID))
        if order_id is None or contact_id is None:
            log.error("family alert call %s without order or contact", agi.env.uniqueid)
            return
        language = self.ctx.settings.ivr.default_language
        prompt = self.ctx.prompts.path("family_alert", language)
        acknowledged = False
        try:
            for _ in range(ATTEMPTS):
                if (await agi.get_data(prompt, ACK_TIMEOUT_MS, 1)).digits == ACK_KEY:
                    acknowledged = True
                    break
        except AgiHangup:
            pass
        await self._record(order_id, contact_id, acknowledged, agi.env.uniqueid)
        await self.ctx.acks.signal(order_id, contact_id, acknowledged)
        if acknowledged and not agi.hungup:
            await agi.stream_file(self.ctx.prompts.path("family_thanks", language))

    async def _record(self, order_id: int, contact_id: int, acknowledged: bool,
                      uniqueid: str) -> None:
        event = FamilyAcknowledged if acknowledged else FamilyNoKey
        kind = event.name.value
        at = self.ctx.now()

        async def once(session: AsyncSession) -> None:  # a retry after a lost commit: no twin
            if not await has_call_event(session, order_id, kind, uniqueid):
                await add_order_event(session, order_id, kind, at,
                                      {"contact_id": contact_id, "uniqueid": uniqueid})

        # the answer stays on the timeline whatever the database does meanwhile: a resumed
        # escalation must not ring the family again after someone pressed 1
        await self.ctx.patient_writes.store(f"family:{order_id}", f"family answer for order "
                                            f"{order_id}", once)
        await self.ctx.live.publish(event(order_id=order_id, contact_id=contact_id,
                                          place=await order_place(self.ctx, order_id)))


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
