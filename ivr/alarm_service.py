"""Scans AlarmReceiver's spool: emergency orders for alarms, alerts for the operators."""

from __future__ import annotations

import logging

from dispatch.alarm_codes import CodeMap, load_code_map
from dispatch.alarms import ingest_spool
from ivr.context import EngineContext
from ivr.outbox_relay import publish_committed
from ivr.periodic import repeat

log = logging.getLogger(__name__)


async def scan_once(ctx: EngineContext, code_map: CodeMap) -> int:
    """One pass; returns the number of emergency orders opened."""
    settings = ctx.settings.alarms
    report = await ingest_spool(ctx.writing, settings.spool_dir, ctx.now(), code_map,
                                local_area_code=ctx.settings.ivr.local_area_code,
                                min_age_s=settings.min_age_s)
    # committed with their alarm events (the outbox); Redis refusing leaves them to the relay
    await publish_committed(ctx, [order.announcement for order in report.orders
                                  if order.announcement is not None])
    for order in report.orders:
        if ctx.on_emergency is not None:
            ctx.on_emergency(order.order_id, order.elder_id)
    await publish_committed(ctx, [alert.announcement for alert in report.alerts
                                  if alert.announcement is not None])
    for alert in report.alerts:
        if alert.announcement is None:  # a quarantined file: no alarm event to commit with
            await ctx.live.publish(alert.event())
    for name, reason in report.quarantined:
        log.error("alarm file %s quarantined: %s", name, reason)
    for name, reason in report.failed:
        log.error("alarm file %s not ingested yet: %s", name, reason)
    return len(report.orders)


async def scan_forever(ctx: EngineContext) -> None:
    """Scan at start and every ``alarms.scan_interval_s``; errors never stop the loop."""
    code_map = load_code_map(ctx.settings.alarms.code_map)
    try:
        ctx.settings.alarms.spool_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.error("alarm spool %s cannot be created: %s", ctx.settings.alarms.spool_dir, exc)
    await repeat(lambda: scan_once(ctx, code_map),
                 lambda: ctx.clock.sleep(ctx.settings.alarms.scan_interval_s),
                 "alarm spool scan")
