"""Handset calls the dialplan queued without the engine.

When FastAGI does not serve a call (no engine reachable, the connection dropped by a load
balancer that found no engine in time, an engine killed mid-call), the dialplan still queues
the caller, with ``HOTLINE_REASON`` ``engine_<AGISTATUS>`` and at priority 0, and only spools
the call if nobody answers. An operator answering such a handset call would have no screen
pop, and the emergency no order and no family escalation. Every engine sees the dialplan's
``HotlineQueued`` event; one of them (a lease per call) adopts the call: if the caller-ID is a
handset line (``ivr/handset_lines.py``, no database needed) it stores the call's emergency
order (the same business key as the flow's and the spool's, so stored once whichever path
gets there), which starts the family escalation, publishes the screen pop and writes the call
record pointing to the order.

An engine whose AMI link was down when the call queued never saw that event. On every AMI
(re)connection the engine lists the queues (QueueStatus); each waiting handset caller whose
channel says ``HOTLINE_REASON`` ``engine_*`` (Getvar) is adopted the same way. A call that
queued and was answered while no engine listened is spooled by the dialplan when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from dispatch.calls import CallDisposition, CallReason
from dispatch.phones import mask
from ivr.ami.errors import AmiError
from ivr.ami.link import AmiLink
from ivr.ami.messages import AmiMessage
from ivr.claims import Leases
from ivr.dialplan_contract import UserEventName
from ivr.emergency_orders import EmergencyCall, stored_or_spooled
from ivr.flows.inbound import EMERGENCY_QUEUE_PRIORITY
from ivr.screen_pop import publish_screen_pop

if TYPE_CHECKING:
    from dispatch.registry import CallerIdentity
    from ivr.context import EngineContext

log = logging.getLogger(__name__)

# the dialplan's reason when the engine set none: engine_ and the AGISTATUS it saw
AGISTATUS_REASONS = frozenset(f"engine_{status}"
                              for status in ("SUCCESS", "FAILURE", "HANGUP", "NOTFOUND"))
LEASE_S = 3600.0  # one engine adopts a call; the lease outlives any call
SWEEP_AT_ONCE = 16  # queued callers a reconnection sweep asks about (Getvar) at once


class AdoptedCalls:
    """Adopts the handset calls queued without the engine; one per engine process."""

    def __init__(self, ctx: EngineContext, leases: Leases) -> None:
        self.ctx = ctx
        self.leases = leases
        self.adopted = 0
        self._sweep: asyncio.Task[None] | None = None

    def subscribe(self, ami: AmiLink) -> None:
        ami.on_event("UserEvent", self._on_user_event)

    async def _on_user_event(self, message: AmiMessage) -> None:
        if message.get("UserEvent") == UserEventName.QUEUED \
                and message.get("Reason") in AGISTATUS_REASONS:
            await self.adopt(message)

    def sweep(self, ami: AmiLink, listing: Sequence[AmiMessage]) -> None:
        """Adopt, in the background, the handset callers a QueueStatus ``listing`` shows
        waiting that the dialplan queued without the engine (a sweep in progress is
        replaced)."""
        if self._sweep is not None:
            self._sweep.cancel()
        self._sweep = asyncio.create_task(self._sweep_entries(ami, listing),
                                          name="adopt queued calls")

    async def close(self) -> None:
        """End a sweep in progress (the engine stops)."""
        if self._sweep is not None:
            self._sweep.cancel()
            await asyncio.gather(self._sweep, return_exceptions=True)

    async def _sweep_entries(self, ami: AmiLink, listing: Sequence[AmiMessage]) -> None:
        entries = [entry for entry in listing if entry.get("Event") == "QueueEntry"
                   and entry.get("Channel") and self._handset(entry) is not None]
        turns = asyncio.Semaphore(SWEEP_AT_ONCE)

        async def one(entry: AmiMessage) -> None:
            async with turns:
                reason = await _reason_of(ami, entry.get("Channel"))
            if reason in AGISTATUS_REASONS:
                await self.adopt({**entry, "Reason": reason})

        results = await asyncio.gather(*(one(entry) for entry in entries),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("a queued handset call was not adopted", exc_info=result)

    def _handset(self, fields: Mapping[str, str]) -> CallerIdentity | None:
        ivr = self.ctx.settings.ivr
        identity = self.ctx.handsets.identity(fields.get("CallerIDNum"), ivr.local_area_code,
                                              ivr.default_language)
        return None if identity is None or identity.elder_id is None else identity

    async def adopt(self, fields: Mapping[str, str]) -> None:
        """Store the order, publish the pop and write the call record of the handset call
        ``fields`` (a HotlineQueued event, or a QueueEntry with its ``Reason``) describe,
        unless another engine adopted it or it is not a handset call."""
        identity = self._handset(fields)
        uniqueid = fields.get("Uniqueid")
        if identity is None or not uniqueid:
            return  # not a handset: the operator takes it as any caller the engine missed
        if not await self.leases.claim(f"adopt:{uniqueid}", LEASE_S):
            return  # another engine adopted it
        self.adopted += 1
        reason = fields.get("Reason")
        log.warning("handset call %s from %s queued without the engine (%s): adopted as an "
                    "emergency", uniqueid, mask(identity.number), reason)
        started = self.ctx.now()
        linkedid = fields.get("Linkedid") or None
        task = self.ctx.emergency_orders.store(EmergencyCall(
            uniqueid=uniqueid, linkedid=linkedid, channel=fields.get("Channel"),
            caller=identity.number, caller_name=fields.get("CallerIDName") or None,
            reason=CallReason.HANDSET_EMERGENCY.value, elder_id=identity.elder_id,
            requested_by="elder", source="handset", place=identity.place))
        await publish_screen_pop(
            self.ctx, uniqueid=uniqueid, linkedid=linkedid,
            reason=CallReason.HANDSET_EMERGENCY.value, priority=EMERGENCY_QUEUE_PRIORITY,
            caller=identity.number, caller_status=identity.status.value, relation=None,
            order_no=None, elder_id=identity.elder_id)
        order = await stored_or_spooled(task)
        record = dict(
            uniqueid=uniqueid, linkedid=linkedid, channel=fields.get("Channel"),
            direction="inbound", caller_number=identity.number,
            identity_status=identity.status.value, elder_id=identity.elder_id,
            started_at=started, ended_at=self.ctx.now(),
            disposition=CallDisposition.OPERATOR, reason=reason,
            order_id=None if order is None else order.id, answered_at=None,
            order_announced_at=None)
        await self.ctx.emergency_orders.store_call_record(record)


async def _reason_of(ami: AmiLink, channel: str) -> str | None:
    """The channel's HOTLINE_REASON; None when it is gone or the PBX does not answer."""
    try:
        reply = await ami.action("Getvar", {"Channel": channel, "Variable": "HOTLINE_REASON"})
    except AmiError as exc:
        log.warning("queued call's reason not read: %s", exc)
        return None
    if isinstance(reply, list) or reply.get("Response") != "Success":
        return None
    return reply.get("Value") or None
