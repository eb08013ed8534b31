"""Publishing the event outbox to the consoles' Redis stream.

Every event goes out right after its outbox row is committed (a screen pop still reaches
the consoles before its caller reaches the queue); what Redis refused stays unpublished and
the relay loop, every ``redis.outbox_relay_s``, publishes it once Redis is back. A row is
marked published only after its XADD succeeded, so delivery is at least once; each stream
entry carries ``outbox_id`` for the consoles to de-duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from dispatch import outbox
from dispatch.outbox import Announcement
from ivr.context import EngineContext
from ivr.periodic import repeat
from ivr.storage_steps import STORAGE_ERRORS, describe

log = logging.getLogger(__name__)

BATCH = 500


async def publish_committed(ctx: EngineContext, entries: Iterable[Announcement]) -> int:
    """XADD committed outbox rows in order, stop at the first Redis refuses, and mark those
    sent as published; returns how many went out. The rest wait for the relay."""
    sent: list[int] = []
    for entry in entries:
        if not await ctx.live.publish_entry(entry.outbox_id, entry.kind, entry.payload):
            break
        sent.append(entry.outbox_id)
    if sent:
        try:
            async with ctx.writing() as session:
                await outbox.mark_published(session, sent, ctx.now())
        except STORAGE_ERRORS as exc:  # published again later: at least once
            log.error("outbox rows from %s not marked published: %s", sent[0], exc)
    return len(sent)


# How long an event waits for its outbox row before it goes to the stream without one.
ANNOUNCE_WAIT_S = 0.5


class OutboxRelay:
    """Writes events to the outbox and publishes committed rows; one per engine process."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    def attach(self) -> None:
        """Route every ``ctx.live.publish`` through the outbox."""
        self.ctx.live.announcer = self.announce

    async def announce(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Commit the event's row, then publish it. The row gets ``ANNOUNCE_WAIT_S`` of engine
        time (a screen pop must not hold a caller from the queue): with the database slow or down
        the event goes to the stream at once, best effort, without an outbox id."""
        wait_s = ANNOUNCE_WAIT_S / self.ctx.clock.speed  # engine time, as every other wait
        try:
            async with asyncio.timeout(wait_s), self.ctx.sessions() as session:
                entry = await outbox.add_committed(session, kind, payload, self.ctx.now())
        except (*STORAGE_ERRORS, TimeoutError) as exc:
            log.error("event %s not in the outbox (database unavailable): %s", kind,
                      describe(exc))
            await self.ctx.live.publish_direct(kind, outbox.plain(payload))
            return
        if not await self.ctx.live.publish_entry(entry.outbox_id, entry.kind, entry.payload):
            return  # Redis refused: the relay publishes the row when it is back
        try:
            async with asyncio.timeout(wait_s), self.ctx.sessions() as session:
                await outbox.mark_one_published(session, entry.outbox_id, self.ctx.now())
        except (*STORAGE_ERRORS, TimeoutError) as exc:  # published again later: at least once
            log.warning("outbox row %s not marked published: %s", entry.outbox_id,
                        describe(exc))

    async def publish(self, entries: Iterable[Announcement]) -> int:
        return await publish_committed(self.ctx, entries)

    async def relay_once(self) -> int:
        """Publish what is still unpublished and trim the stream; returns rows published."""
        total = 0
        while True:
            async with self.ctx.sessions() as session:
                entries = await outbox.pending(session, BATCH)
            if not entries:
                break
            sent = await self.publish(entries)
            total += sent
            if sent < len(entries):
                break
        if total:
            log.info("outbox: %d events published late", total)
        await self.ctx.live.trim_older_than(self.ctx.settings.redis.event_stream_max_age_s)
        return total

    async def relay_forever(self) -> None:
        await repeat(self.relay_once,
                     lambda: asyncio.sleep(self.ctx.settings.redis.outbox_relay_s),
                     "outbox relay")
