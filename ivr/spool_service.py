"""Replays the emergency spool (calls nobody answered while the engine was down) into orders."""

from __future__ import annotations

import logging

from dispatch.spool_replay import replay_spool, settle_alert
from ivr.context import EngineContext
from ivr.periodic import repeat

log = logging.getLogger(__name__)


async def replay_once(ctx: EngineContext) -> int:
    """One pass over the spool: orders for known callers, alerts for the others."""
    report = await replay_spool(ctx.writing, ctx.settings.spool.dir,
                                ctx.settings.ivr.local_area_code, ctx.now())
    for order in report.created:
        await ctx.live.publish("spooled_emergency", {"order_no": order.order_no,
                                                     "elder_id": order.elder_id,
                                                     "uniqueid": order.uniqueid})
    for alert in report.alerts:
        await ctx.live.publish("spooled_unknown_caller", {
            "uniqueid": alert.record.uniqueid, "caller": alert.record.caller_number,
            "caller_status": alert.caller_status, "spooled_at": str(alert.record.spooled_at),
        })
        settle_alert(alert)
    for name, reason in report.quarantined:
        log.error("spool record %s quarantined: %s", name, reason)
    return len(report.created)


async def replay_forever(ctx: EngineContext) -> None:
    """Replay at start, then every ``spool.replay_interval_s``; errors never stop the loop."""
    await repeat(lambda: replay_once(ctx),
                 lambda: ctx.clock.sleep(ctx.settings.spool.replay_interval_s), "spool replay")
