"""The engine's recordings retention: a pass at start, then every
``[recordings] prune_interval_s`` (``dispatch/retention.py``)."""

from __future__ import annotations

import logging

from dispatch.retention import RetentionReport, check_index, prune_expired
from ivr.context import EngineContext
from ivr.periodic import repeat
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)


async def prune_once(ctx: EngineContext) -> RetentionReport:
    """Delete what expired (one writer at a time, as every write), then check the index."""
    settings = ctx.settings.recordings
    report = RetentionReport()
    await storage_step(ctx.writing, lambda session: prune_expired(
        session, settings.dir, ctx.now(), settings.retention_days, report), log,
        "recordings retention pass failed (the next pass retries)")
    await storage_step(ctx.sessions, lambda session: check_index(
        session, settings.dir, ctx.now(), report), log, "recordings index not checked")
    return report


async def prune_forever(ctx: EngineContext) -> None:
    await repeat(lambda: prune_once(ctx),
                 lambda: ctx.clock.sleep(ctx.settings.recordings.prune_interval_s),
                 "recordings retention")
