"""Replays the emergency spool (calls nobody answered while the engine was down, and the
in-flight orders of engines that died) into orders."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch import outbox
from dispatch.calls import CallReason
from dispatch.console_events import SpooledUnknownCaller
from dispatch.spool_replay import SpoolAlert, UnfinishedCall, replay_spool, settle_alert
from ivr.context import EngineContext
from ivr.flows.inbound import EMERGENCY_QUEUE_PRIORITY
from ivr.inflight_orders import adopt_orphans
from ivr.outbox_relay import publish_committed
from ivr.periodic import repeat
from ivr.screen_pop import publish_screen_pop
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)


async def replay_once(ctx: EngineContext) -> int:
    """One pass over the spool, with what dead engines left in flight: orders for known
    callers, alerts for the others."""
    adopted = await asyncio.to_thread(adopt_orphans, ctx.settings.spool.dir)
    report = await replay_spool(ctx.writing, ctx.settings.spool.dir,
                                ctx.settings.ivr.local_area_code, ctx.now(),
                                in_flight=frozenset(adopted))
    # each order's announcement was committed with it; Redis refusing leaves it to the relay
    await publish_committed(ctx, [order.announcement for order in report.created
                                  if order.announcement is not None])
    for call in report.unfinished:
        await _pop_left_behind(ctx, call)
    for alert in report.alerts:
        if await _announce_unknown_caller(ctx, alert):
            settle_alert(alert)
    for name, reason in report.quarantined:
        log.error("spool record %s quarantined: %s", name, reason)
    return len(report.created)


async def _pop_left_behind(ctx: EngineContext, call: UnfinishedCall) -> None:
    """The screen pop of a call whose engine died before it ended: that engine routed the
    caller to the queue, and may have died before the pop went out (it follows the route
    when the profile is slow to read). Late, and perhaps twice: the console shows a call's
    pop once."""
    record, identity = call.record, call.identity
    await publish_screen_pop(
        ctx, uniqueid=record.uniqueid, linkedid=record.linkedid or None,
        reason=record.reason or CallReason.HANDSET_EMERGENCY.value,
        priority=EMERGENCY_QUEUE_PRIORITY, caller=identity.number,
        caller_status=identity.status.value, relation=identity.relation,
        order_no=call.order_no, elder_id=identity.elder_id)


async def _announce_unknown_caller(ctx: EngineContext, alert: SpoolAlert) -> bool:
    """Commit the alert to the outbox and publish it; False (the record stays in the spool
    for the next pass) if the database did not take it."""
    async def announce(session: AsyncSession) -> Any:
        announced = await outbox.add(session, SpooledUnknownCaller(
            uniqueid=alert.record.uniqueid, caller=alert.record.caller_number,
            caller_status=alert.caller_status, spooled_at=str(alert.record.spooled_at)),
            ctx.now())
        await session.commit()
        return announced

    stored = await storage_step(ctx.writing, announce, log,
                                "spool alert %s not stored, kept for the next pass",
                                alert.path.name)
    if not stored.ok:
        return False
    await publish_committed(ctx, [stored.value])
    return True


async def replay_forever(ctx: EngineContext) -> None:
    """Replay at start, then every ``spool.replay_interval_s``; errors never stop the loop."""
    await repeat(lambda: replay_once(ctx),
                 lambda: ctx.clock.sleep(ctx.settings.spool.replay_interval_s), "spool replay")
