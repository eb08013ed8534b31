"""The emergency watch: an emergency nobody has answered stays open, and the engine keeps
trying until an operator answers or a disposition closes the alarm.

Every ``emergency.retry_interval_s`` the watch looks at the open emergency orders
(``dispatch/open_alarms.py``). For each one no operator has answered and with no call for it
in the queue now, it publishes ``emergency_open`` on the event stream (the consoles ring
again) and, once the back-off allows, calls the elder back (AMI Originate into
``[hotline-emergency-callback]``, which queues the answered call at emergency priority like
any other). Every callback is an ``emergency_retry`` event on the order's timeline, with the
call's uniqueid, so the watch sees when an operator finally answers it.

Redis leases make one engine process at a time call an elder back for an order (held while
the phone rings, until the attempt is on the timeline) and alert for it once per interval.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.console_events import EmergencyOpen
from dispatch.open_alarms import (
    CALLBACK_KINDS,
    CALLBACK_REASON,
    RETRY_EVENT,
    OpenAlarm,
    open_alarms,
)
from dispatch.orders import add_order_event
from dispatch.phones import mask, national
from dispatch.quality import callback_number
from ivr.ami.client import ORIGINATE_MARGIN_S
from ivr.ami.link import AmiLink
from ivr.ami.placing import NOT_SENT, place_call
from ivr.claims import Leases
from ivr.config import EmergencySettings
from ivr.context import EngineContext
from ivr.dialplan_contract import ChannelVar, Context
from ivr.flows.inbound import EMERGENCY_QUEUE_PRIORITY
from ivr.order_tasks import OrderTasks
from ivr.periodic import repeat
from ivr.screen_pop import publish_screen_pop
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)

CALLBACK_CONTEXT = Context.EMERGENCY_CALLBACK
LEASE_MARGIN_S = 5.0
ALERT_SHARE = 0.9  # of the interval: the next pass of the same engine alerts again


class EmergencyWatch:
    """Re-alerts open unattended emergencies and calls their elders back, one task a call."""

    def __init__(self, ctx: EngineContext, ami: AmiLink | None, leases: Leases) -> None:
        self.ctx = ctx
        self.ami = ami
        self.leases = leases
        self.jobs = OrderTasks("emergency call-back")
        self.passes = 0  # checks finished, their alerts sent

    @property
    def settings(self) -> EmergencySettings:
        return self.ctx.settings.emergency

    async def watch_forever(self) -> None:
        """One pass at start, then every ``emergency.retry_interval_s``; errors never stop it."""
        await repeat(self.check, lambda: self.ctx.clock.sleep(self.settings.retry_interval_s),
                     "watching open emergencies")

    async def close(self) -> None:
        await self.jobs.close()

    async def check(self) -> int:
        """Alert for every open emergency nobody is on; start the callbacks that are due.
        Returns how many emergencies were unattended."""
        now = self.ctx.now()
        settings = self.settings
        read = await storage_step(
            self.ctx.sessions, lambda session: open_alarms(session, now, settings.stale_call_s),
            log, "open emergencies not read")
        unattended = [alarm for alarm in read.value or () if alarm.unattended]
        for alarm in unattended:
            if alarm.age_s(now) >= settings.retry_interval_s:
                await self._alert(alarm, now)
            if now >= alarm.next_callback_at(settings.callback_min_gap_s,
                                             settings.callback_max_gap_s):
                self.jobs.start(alarm.order_id, lambda order_id=alarm.order_id:
                                self.call_back(order_id))
        self.passes += 1
        return len(unattended)

    async def _alert(self, alarm: OpenAlarm, now: datetime) -> None:
        """``emergency_open`` once per interval per order, whichever engine sends it."""
        ttl = ALERT_SHARE * self.settings.retry_interval_s / self.ctx.clock.speed
        if not await self.leases.claim(f"emergency-alert:{alarm.order_id}", ttl):
            return
        await self.ctx.live.publish(EmergencyOpen(
            order_no=alarm.order_no, order_id=alarm.order_id, elder_id=alarm.elder_id,
            elder=alarm.elder_name, age_s=round(alarm.age_s(now)), attempts=alarm.attempts,
            last_outcome=alarm.last_outcome, place=alarm.place))

    @property
    def _lease_s(self) -> float:
        """Real seconds an Originate may block (ring timeout plus the client's margin)."""
        return self.ctx.settings.dial.ring_timeout_s + ORIGINATE_MARGIN_S + LEASE_MARGIN_S

    async def call_back(self, order_id: int) -> str:
        """Call the elder back into the operator queue unless another engine does, the order
        is no longer unattended or the callback is not due: the outcome, "elsewhere" or
        "not_due"."""
        lease = f"emergency-callback:{order_id}"
        if not await self.leases.claim(lease, self._lease_s):
            return "elsewhere"
        try:
            return await self._call_back(order_id)
        finally:
            await self.leases.release(lease)

    async def _call_back(self, order_id: int) -> str:
        settings = self.settings
        started = self.ctx.now()
        async def due(session: AsyncSession) -> tuple[OpenAlarm, str | None] | None:
            found = await open_alarms(session, started, settings.stale_call_s, order_id)
            alarm = found[0] if found else None
            if alarm is None or not alarm.unattended or started < alarm.next_callback_at(
                    settings.callback_min_gap_s, settings.callback_max_gap_s):
                return None  # answered, closed, queued, or another engine just called
            return alarm, await callback_number(session, alarm.elder_id, CALLBACK_KINDS)

        checked = await storage_step(self.ctx.sessions, due, log,
                                     "emergency %s not checked for a callback", order_id)
        if checked.value is None:
            return "not_due"
        alarm, number = checked.value
        outcome, uniqueid = await self._originate(alarm, number)
        if outcome == NOT_SENT:  # nothing dialled: no callback to count, the next pass tries
            log.warning("emergency %s: callback not sent, the AMI link is down", alarm.order_no)
            return outcome
        detail = {"attempt": alarm.attempts + 1, "outcome": outcome, "uniqueid": uniqueid,
                  "number": mask(number), "started_at": started.isoformat()}
        await storage_step(
            self.ctx.writing,
            lambda session: add_order_event(session, order_id, RETRY_EVENT, self.ctx.now(),
                                            detail),
            log, "callback of emergency %s not stored", alarm.order_no)
        log.warning("emergency %s unattended: callback %d to %s: %s", alarm.order_no,
                    alarm.attempts + 1, mask(number), outcome)
        return outcome

    async def _originate(self, alarm: OpenAlarm, number: str | None) -> tuple[str, str | None]:
        """Ring the elder; once answered, the screen pop goes out as the call enters the
        queue. Returns the outcome and the answered call's uniqueid."""
        if number is None:
            return "no_number", None
        dial = self.ctx.settings.dial
        async with self.ctx.holding_priority_line() as line:
            placed = await place_call(
                self.ami, channel=dial.elder.format(number=national(number)),
                context=CALLBACK_CONTEXT, exten="s", caller_id=dial.caller_id,
                variables={ChannelVar.ORDER_ID: str(alarm.order_id),
                           ChannelVar.ELDER_ID: str(alarm.elder_id)},
                timeout_ms=int(dial.ring_timeout_s * 1000))
            if placed.answered and placed.outcome is not None:
                line.uniqueid = placed.outcome.uniqueid  # its line is held until it hangs up
        result = placed.outcome
        if result is None or not result.answered:
            return placed.status, None
        if result.uniqueid is not None:
            await publish_screen_pop(
                self.ctx, uniqueid=result.uniqueid, linkedid=result.uniqueid,
                reason=CALLBACK_REASON, priority=EMERGENCY_QUEUE_PRIORITY, caller=number,
                caller_status="elder", relation=None, order_no=alarm.order_no,
                elder_id=alarm.elder_id)
        return "answered", result.uniqueid
