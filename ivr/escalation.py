"""Family escalation: while the operators take an emergency, the elder's family is called in
order, about 30 s per step, until one of them presses 1 to acknowledge."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from dispatch.orders import add_order_event
from dispatch.phones import mask, national
from dispatch.profile import Contact, family_contacts
from ivr.context import EngineContext

log = logging.getLogger(__name__)

FAMILY_CONTEXT = "hotline-family-alert"
ACK_POLL_S = 0.25


class FamilyEscalation:
    """Starts one escalation task per emergency order; tasks survive the call that began them."""

    def __init__(self, ctx: EngineContext, ami: Any) -> None:
        self.ctx = ctx
        self.ami = ami
        self.tasks: set[asyncio.Task[str]] = set()

    def start(self, order_id: int, elder_id: int) -> None:
        task = asyncio.create_task(self.run(order_id, elder_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def run(self, order_id: int, elder_id: int) -> str:
        """Call each contact in turn; return "acknowledged", "unreached" or "no_family"."""
        async with self.ctx.sessions() as session:
            contacts = await family_contacts(session, elder_id)
        if not contacts:
            await self._event(order_id, "family_none", {})
            return "no_family"
        for contact in contacts:
            if await self._try(order_id, contact):
                return "acknowledged"
        await self._event(order_id, "family_unreached", {"contacts": len(contacts)})
        await self.ctx.live.publish("family_unreached", {"order_id": order_id})
        return "unreached"

    async def _try(self, order_id: int, contact: Contact) -> bool:
        dial = self.ctx.settings.dial
        try:
            outcome = await self.ami.originate(
                channel=dial.family.format(number=national(contact.number)),
                context=FAMILY_CONTEXT, exten="s", priority=1, caller_id=dial.caller_id,
                variables={"HOTLINE_ORDER_ID": str(order_id),
                           "HOTLINE_CONTACT_ID": str(contact.id)},
                timeout_ms=int(dial.ring_timeout_s * 1000),
            )
            reason, answered = outcome.reason_name, outcome.answered
        except Exception as exc:  # AMI down or the link dropped: next contact, never a crash
            log.error("family call to %s failed: %s", mask(contact.number), exc)
            reason, answered = "failed", False
        await self._event(order_id, "family_called",
                          {"contact_id": contact.id, "relation": contact.relation,
                           "outcome": reason})
        if not answered:
            return False
        return await self._wait_for_ack(order_id, contact.id)

    async def _wait_for_ack(self, order_id: int, contact_id: int) -> bool:
        deadline = self.ctx.clock.now() + self.ctx.settings.dial.ack_wait_s
        while self.ctx.clock.now() < deadline:
            if await self.ctx.live.acknowledged(order_id, contact_id):
                return True
            await asyncio.sleep(ACK_POLL_S)
        return False

    async def _event(self, order_id: int, kind: str, detail: dict[str, Any]) -> None:
        try:
            async with self.ctx.writing() as session:
                await add_order_event(session, order_id, kind, self.ctx.now(), detail)
        except (SQLAlchemyError, OSError) as exc:
            log.error("escalation step of order %s not stored: %s", order_id, exc)
