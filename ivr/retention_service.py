"""The engine's recordings retention: a pass at start, then every
``[recordings] prune_interval_s`` (``dispatch/retention.py``)."""

from __future__ import annotations

import logging

from dispatch.retention import (
    RetentionReport,
    check_index,
    forget_unrecorded,
    prune_expired,
)
from ivr.context import EngineContext
from ivr.periodic import repeat
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)


async def prune_once(ctx: EngineContext) -> RetentionReport:
    """Delete what expired and forget calls never recorded (writes, one writer at a time
    as every write), check the index (reads) in between."""
    settings = ctx.settings.recordings
    report = RetentionReport()
    await storage_step(ctx.writing, lambda session: prune_expired(
        session, settings.dir, ctx.now(), settings.retention_days, report), log,
        "recordings retention pass failed (the next pass retries)")
    await storage_step(ctx.sessions, lambda session: check_index(
        session, settings.dir, ctx.now(), report), log, "recordings index not checked")
    if report.never_recorded:
        await storage_step(ctx.writing, lambda session: forget_unrecorded(
            session, report.never_recorded, ctx.now()), log,
            "rows of calls never recorded not removed (the next pass retries)")
    return report


async def prune_forever(ctx: EngineContext) -> None:
    await repeat(lambda: prune_once(ctx),
                 lambda: ctx.clock.sleep(ctx.settings.recordings.prune_interval_s),
                 "recordings retention")
