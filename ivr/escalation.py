"""Family escalation: while the operators take an emergency, the elder's family is called in
order, about 30 s per step, until one of them presses 1 to acknowledge.

The order's timeline is the escalation's memory: an escalation cut off (engine killed,
restarted) resumes from it with the next contact not yet called. A Redis lease per order makes
one engine process at a time run it; a dead process's lease expires after one step's time.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import SQLAlchemyError

from dispatch.models import OrderEvent, OrderStatus, ServiceType, WorkOrder
from dispatch.orders import add_order_event
from dispatch.phones import mask, national
from dispatch.profile import Contact, family_contacts
from ivr.claims import Leases
from ivr.context import EngineContext
from ivr.order_tasks import OrderTasks
from ivr.periodic import repeat

log = logging.getLogger(__name__)

FAMILY_CONTEXT = "hotline-family-alert"
FINISHED = ("family_acknowledged", "family_unreached", "family_none")
CLOSED = (OrderStatus.COMPLETED, OrderStatus.CANCELLED)
LEASE_MARGIN_S = 5.0


class FamilyEscalation:
    """Starts one escalation task per emergency order; tasks survive the call that began them."""

    def __init__(self, ctx: EngineContext, ami: Any, leases: Leases) -> None:
        self.ctx = ctx
        self.ami = ami
        self.leases = leases
        self.jobs = OrderTasks("family escalation")

    def start(self, order_id: int, elder_id: int, resumed: bool = False) -> None:
        self.jobs.start(order_id, lambda: self.run(order_id, elder_id, resumed))

    async def close(self) -> None:
        await self.jobs.close()

    @property
    def _lease_s(self) -> float:
        """Real seconds one step may take (ring, wait for the key) before a lease lapses."""
        dial = self.ctx.settings.dial
        return (dial.ring_timeout_s + dial.ack_wait_s) / self.ctx.clock.speed + LEASE_MARGIN_S

    async def run(self, order_id: int, elder_id: int, resumed: bool = False) -> str:
        """Escalate unless another process does; "acknowledged", "unreached", "no_family",
        "finished" (done before) or "elsewhere" (another process holds the lease)."""
        lease = f"escalation:{order_id}"
        if not await self.leases.claim(lease, self._lease_s):
            return "elsewhere"
        try:
            return await self._escalate(order_id, elder_id, resumed, lease)
        finally:
            await self.leases.release(lease)

    async def _escalate(self, order_id: int, elder_id: int, resumed: bool, lease: str) -> str:
        async with self.ctx.sessions() as session:
            kinds = (await session.execute(
                select(OrderEvent.kind, OrderEvent.detail)
                .where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
            )).all()
            contacts = await family_contacts(session, elder_id)
        if any(kind in FINISHED for kind, _ in kinds):
            return "finished"
        called = {(detail or {}).get("contact_id") for kind, detail in kinds
                  if kind == "family_called"}
        if resumed:
            await self._event(order_id, "family_resumed", {"already_called": len(called)})
        if not contacts:
            await self._event(order_id, "family_none", {})
            return "no_family"
        for contact in contacts:
            if contact.id in called:
                continue
            if not await self.leases.refresh(lease, self._lease_s):
                log.warning("escalation of order %s taken over by another process", order_id)
                return "elsewhere"
            if await self._try(order_id, contact):
                return "acknowledged"
        await self._event(order_id, "family_unreached", {"contacts": len(contacts)})
        await self.ctx.live.publish("family_unreached", {"order_id": order_id})
        return "unreached"

    async def resume_open(self) -> int:
        """Start the escalation of every recent open emergency order not yet finished (the
        lease keeps those another process still runs with it); returns how many started."""
        since = self.ctx.now() - timedelta(seconds=self.ctx.settings.dial.resume_window_s)
        finished = exists().where(OrderEvent.order_id == WorkOrder.id,
                                  OrderEvent.kind.in_(FINISHED))
        try:
            async with self.ctx.sessions() as session:
                rows = (await session.execute(
                    select(WorkOrder.id, WorkOrder.elder_id)
                    .where(WorkOrder.service == ServiceType.EMERGENCY,
                           WorkOrder.status.not_in(CLOSED), WorkOrder.created_at >= since,
                           ~finished)
                    .order_by(WorkOrder.id)
                )).all()
        except (SQLAlchemyError, OSError) as exc:
            log.error("open emergencies not read: %s", exc)
            return 0
        started = [order_id for order_id, _ in rows if order_id not in self.jobs]
        for order_id, elder_id in rows:
            self.start(order_id, elder_id, resumed=True)
        return len(started)

    async def resume_forever(self) -> None:
        """Resume at start, then every ``dial.resume_interval_s``; errors never stop it."""
        await repeat(self.resume_open,
                     lambda: self.ctx.clock.sleep(self.ctx.settings.dial.resume_interval_s),
                     "resuming escalations")

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
        wait_s = self.ctx.settings.dial.ack_wait_s / self.ctx.clock.speed
        return await self.ctx.acks.wait(order_id, contact_id, wait_s)

    async def _event(self, order_id: int, kind: str, detail: dict[str, Any]) -> None:
        try:
            async with self.ctx.writing() as session:
                await add_order_event(session, order_id, kind, self.ctx.now(), detail)
        except (SQLAlchemyError, OSError) as exc:
            log.error("escalation step of order %s not stored: %s", order_id, exc)
