"""Family escalation: while the operators take an emergency, the elder's family is called in
order, about 30 s per step, until one of them presses 1 to acknowledge.

The order's timeline is the escalation's memory: an escalation cut off (engine killed,
restarted) resumes from it with the next contact not yet called. A Redis lease per order makes
one engine process at a time run it; a dead process's lease expires after one step's time.

An infrastructure fault never ends an escalation. A contact whose call was not sent (the AMI
link down) is called once the link is back; if it stays down, the escalation is left to the
resume pass of an engine that has the link. A call whose outcome the link lost is followed
to its end (the family member's answer arrives over FastAGI and Redis, its OriginateResponse
on a later link); with no word of it, the contact is called again. The escalation ends only
on an acknowledgement or once every contact's call has a real outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from dispatch import escalations
from dispatch.console_events import FamilyUnreached
from dispatch.orders import add_order_event
from dispatch.phones import mask, national
from dispatch.profile import Contact, family_contacts
from ivr.ami.client import ORIGINATE_MARGIN_S
from ivr.ami.link import AmiLink
from ivr.ami.placing import LOST, NOT_SENT, Placement, place_call
from ivr.claims import Leases
from ivr.context import EngineContext
from ivr.dialplan_contract import ChannelVar, Context
from ivr.event_places import order_place
from ivr.order_tasks import OrderTasks
from ivr.periodic import repeat
from ivr.storage_steps import storage_step, stored_with_retries

log = logging.getLogger(__name__)

FAMILY_CONTEXT = Context.FAMILY_ALERT
LEASE_MARGIN_S = 5.0


class FamilyEscalation:
    """Starts one escalation task per emergency order; tasks survive the call that began them."""

    def __init__(self, ctx: EngineContext, ami: AmiLink | None, leases: Leases) -> None:
        self.ctx = ctx
        self.ami = ami
        self.leases = leases
        self.jobs = OrderTasks("family escalation")
        # at a stop: the leases of the escalations cut off, released together after them
        self._closing = False
        self._held_at_close: list[str] = []

    def start(self, order_id: int, elder_id: int, resumed: bool = False) -> None:
        self.jobs.start(order_id, lambda: self.run(order_id, elder_id, resumed))

    async def close(self) -> None:
        """Cut the escalations off and release their leases in one round trip (each alone,
        thousands after a disaster minute would outlast the stop), so another engine resumes
        them at once."""
        self._closing = True
        await self.jobs.close()
        held, self._held_at_close = self._held_at_close, []
        await self.leases.release_many(held)

    @property
    def _lease_s(self) -> float:
        """Real seconds one step may take (ring, wait for the key) before a lease lapses."""
        dial = self.ctx.settings.dial
        return (dial.ring_timeout_s + dial.ack_wait_s) / self.ctx.clock.speed + LEASE_MARGIN_S

    async def run(self, order_id: int, elder_id: int, resumed: bool = False) -> str:
        """Escalate unless another process does; "acknowledged", "unreached", "no_family",
        "finished" (done before) or "elsewhere" (another process holds the lease)."""
        lease = escalation_lease(order_id)
        if not await self.leases.claim(lease, self._lease_s):
            return "elsewhere"
        try:
            return await self._escalate(order_id, elder_id, resumed, lease)
        finally:
            if self._closing:
                self._held_at_close.append(lease)
            else:
                await self.leases.release(lease)

    async def _escalate(self, order_id: int, elder_id: int, resumed: bool, lease: str) -> str:
        async def read(session: Any) -> tuple[Any, list[Contact]]:
            return (await escalations.timeline(session, order_id),
                    await family_contacts(session, elder_id))

        # the database down: left to the next resume pass, which starts it again
        step = await storage_step(self.ctx.sessions, read, log,
                                  "escalation of order %s deferred: its timeline not read",
                                  order_id, level=logging.WARNING)
        if step.value is None:
            return "deferred"
        kinds, contacts = step.value
        if any(kind in escalations.FINISHED for kind, _ in kinds):
            return "finished"
        called = {detail.get("contact_id") for kind, detail in kinds
                  if kind == "family_called" and detail.get("outcome") != LOST}
        if resumed:
            await self._event(order_id, "family_resumed", {"already_called": len(called)})
        if not contacts:
            await self._event(order_id, "family_none", {})
            return "no_family"
        for contact in contacts:
            while contact.id not in called:
                if not await self.leases.refresh(lease, self._lease_s):
                    log.warning("escalation of order %s taken over by another process",
                                order_id)
                    return "elsewhere"
                step = await self._try(order_id, contact)
                if step == "acknowledged":
                    return "acknowledged"
                if step == NOT_SENT and not await self._link_back(lease):
                    log.warning("escalation of order %s waits for an engine with AMI", order_id)
                    return "deferred"
                if step not in (NOT_SENT, LOST):
                    called.add(contact.id)
        await self._event(order_id, "family_unreached", {"contacts": len(contacts)})
        await self.ctx.live.publish(FamilyUnreached(order_id=order_id,
                                                    place=await order_place(self.ctx, order_id)))
        return "unreached"

    async def _link_back(self, lease: str) -> bool:
        """Wait, holding the lease, for the AMI link to return; False if it stays down for
        one lease period (the resume pass of an engine with the link takes over)."""
        waited, step = 0.0, self._lease_s / 3
        while waited < self._lease_s:
            with contextlib.suppress(Exception):
                await self.ami.wait_connected(step)
                return True
            waited += step
            if not await self.leases.refresh(lease, self._lease_s):
                return False
        return False

    async def resume_open(self) -> int:
        """Start the escalation of every recent open emergency order not yet finished (the
        lease keeps those another process still runs with it); returns how many started."""
        if not getattr(self.ami, "connected", False):
            return 0  # an engine without the AMI link leaves them to one that has it
        since = self.ctx.now() - timedelta(seconds=self.ctx.settings.dial.resume_window_s)
        read = await storage_step(self.ctx.sessions,
                                  lambda session: escalations.unfinished(session, since),
                                  log, "open emergencies not read")
        rows = read.value or []
        started = [order_id for order_id, _ in rows if order_id not in self.jobs]
        for order_id, elder_id in rows:
            self.start(order_id, elder_id, resumed=True)
        return len(started)

    async def resume_forever(self) -> None:
        """Resume at start, then every ``dial.resume_interval_s``; errors never stop it."""
        await repeat(self.resume_open,
                     lambda: self.ctx.clock.sleep(self.ctx.settings.dial.resume_interval_s),
                     "resuming escalations")

    async def _try(self, order_id: int, contact: Contact) -> str:
        """Call one contact: "acknowledged", "not_sent" (nothing dialled), "lost" (no word
        of the call) or the call's outcome."""
        dial = self.ctx.settings.dial
        async def waiting() -> None:  # on the timeline: this contact waits for a line
            await self._event(order_id, "family_waiting",
                              {"contact_id": contact.id, "relation": contact.relation})

        async with self.ctx.holding_priority_line(on_wait=waiting) as line:
            placed = await place_call(
                self.ami, channel=dial.family.format(number=national(contact.number)),
                context=FAMILY_CONTEXT, exten="s", caller_id=dial.caller_id,
                variables={ChannelVar.ORDER_ID: str(order_id),
                           ChannelVar.CONTACT_ID: str(contact.id)},
                timeout_ms=int(dial.ring_timeout_s * 1000))
            if placed.answered and placed.outcome is not None:
                line.uniqueid = placed.outcome.uniqueid  # its line is held until it hangs up
        if placed.status == NOT_SENT:
            log.warning("family call to %s not sent: %s", mask(contact.number), placed.error)
            await self._event(order_id, "family_not_called",
                              {"contact_id": contact.id, "reason": placed.error[:120]})
            return NOT_SENT
        if placed.status == LOST:
            placed, acked = await self._follow_lost(order_id, contact.id, placed)
            if acked is not None:
                await self._called(order_id, contact, "answered")
                return "acknowledged" if acked else "answered"
            if placed.status == LOST:
                await self._called(order_id, contact, LOST)
                return LOST
        await self._called(order_id, contact, placed.status)
        if not placed.answered:
            return placed.status
        return "acknowledged" if await self._wait_for_ack(order_id, contact.id) else "answered"

    async def _follow_lost(self, order_id: int, contact_id: int, placed: Placement
                           ) -> tuple[Placement, bool | None]:
        """A call whose link dropped: follow it until the family member's answer (True, or
        False for a call ended without the key) or its OriginateResponse on a later link
        tells how it went. ``(placement, None)`` when no answer came."""
        speed = self.ctx.clock.speed
        ring_s = self.ctx.settings.dial.ring_timeout_s / speed + ORIGINATE_MARGIN_S
        loop = asyncio.get_running_loop()
        answer_by = loop.time() + ring_s + self.ctx.settings.dial.ack_wait_s / speed
        answer = asyncio.ensure_future(
            self.ctx.acks.wait(order_id, contact_id, answer_by - loop.time()))
        late = asyncio.ensure_future(self.ami.late_outcome(placed.action_id, ring_s))
        try:
            await asyncio.wait({answer, late}, return_when=asyncio.FIRST_COMPLETED)
            if not answer.done() and late.result() is not None:
                outcome = late.result()
                placed = Placement(outcome.reason_name, placed.action_id, outcome)
                if not outcome.answered:
                    return placed, None
            acked = await answer
            if acked or loop.time() < answer_by:  # key 1, or the call ended without it
                return placed, acked
            return placed, None
        finally:
            for task in (answer, late):
                task.cancel()

    async def _called(self, order_id: int, contact: Contact, outcome: str) -> None:
        await self._event(order_id, "family_called",
                          {"contact_id": contact.id, "relation": contact.relation,
                           "outcome": outcome})

    async def _wait_for_ack(self, order_id: int, contact_id: int) -> bool:
        wait_s = self.ctx.settings.dial.ack_wait_s / self.ctx.clock.speed
        return await self.ctx.acks.wait(order_id, contact_id, wait_s)

    async def _event(self, order_id: int, kind: str, detail: dict[str, Any]) -> None:
        """A step on the order's timeline, stored before the escalation goes on: refused (the
        database away for a moment), it is tried again, once stored, for up to half a lease
        period (the resume pass, in this process or another, reads the timeline to know whom
        it called; a step still unwritten would have it ring them again). Given up, it is
        logged and the escalation goes on without it."""
        at = self.ctx.now()
        tries = 0

        async def write(session: Any) -> None:
            nonlocal tries
            tries += 1  # a retry first looks for the step an earlier try may have stored
            if tries == 1 or not await escalations.has_event_at(session, order_id, kind, at):
                await add_order_event(session, order_id, kind, at, detail)

        async def keep_lease() -> None:
            # last refreshed before the ring: should it lapse during the retries, a resume
            # pass elsewhere would read a timeline without this step and ring them again
            await self.leases.refresh(escalation_lease(order_id), self._lease_s)

        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._lease_s / 2
        step = await stored_with_retries(
            self.ctx.writing, write, log, "escalation step %s of order %s not stored (try %d)",
            kind, order_id, give_up=lambda: loop.time() >= give_up_at, before_retry=keep_lease)
        if not step.ok:
            log.warning("escalation step %s of order %s not stored: going on without it",
                        kind, order_id)


def escalation_lease(order_id: int) -> str:
    """The lease an order's escalation runs under, in whichever engine runs it."""
    return f"escalation:{order_id}"
