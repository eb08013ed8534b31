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
from collections.abc import Iterable
from datetime import datetime, timedelta

from dispatch import outbox
from dispatch.console_events import ConsoleEvent
from dispatch.outbox import Announcement
from ivr.context import EngineContext
from ivr.periodic import repeat
from ivr.storage_steps import STORAGE_ERRORS, describe, storage_step

log = logging.getLogger(__name__)

# Rows a relay pass reads at once. A pass's reads and marks are urgent (they go before
# background writes): late screen pops wait on them.
BATCH = 500
# A pass sends at most this many batches; the next pass (``[redis] outbox_relay_s`` later)
# then looks for a new Redis server and marks what went out directly meanwhile. Unbounded,
# a pass on a disaster minute went on for as long as late rows kept coming (88 s once), and
# a new Redis server went unnoticed as long.
RELAY_BATCHES = 4


async def publish_committed(ctx: EngineContext, entries: Iterable[Announcement]) -> int:
    """XADD committed outbox rows in order, stop at the first Redis refuses, and mark those
    sent as published; returns how many went out. The rest wait for the relay."""
    sent: list[int] = []
    for entry in entries:
        if not await ctx.live.publish_entry(entry.outbox_id, entry.event):
            break
        sent.append(entry.outbox_id)
    if sent:
        try:
            async with ctx.writing(urgent=True) as session:
                await outbox.mark_published(session, sent, ctx.now())
        except STORAGE_ERRORS as exc:  # published again later: at least once
            log.error("outbox rows from %s not marked published: %s", sent[0], exc)
    return len(sent)


# A new Redis server behind the stream may lack what its predecessor took in its last
# moments (Redis replicates after it answers; a primary killed in between takes the entries
# with it): the rows published since this long before the last pass that saw the old server
# go out again.
REPUBLISH_MARGIN_S = 10.0
# A relay pass waits this long (real seconds) for rows still being written whose event went
# out directly, before it marks and relays; a database outage must not hold it longer.
LATE_WAIT_S = 2.0

# How long an event waits for its outbox row before it goes to the stream without one.
ANNOUNCE_WAIT_S = 0.5
ANNOUNCE_MIN_REAL_S = 0.2  # under a fast simulated clock, still room for a busy database


class OutboxRelay:
    """Writes events to the outbox and publishes committed rows; one per engine process."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._sent: set[int] = set()  # published by announce, not yet marked in the table
        self._writes: set[asyncio.Future[Announcement]] = set()  # rows being committed
        # rows still being committed whose event was sent directly: each settles once both
        # the row and that send are done
        self._late: set[asyncio.Future[None]] = set()
        self._server: str | None = None  # the Redis server the last pass found
        self._server_seen_at: datetime | None = None
        # how many times a new server was found: a send made before the latest is not
        # trusted to be in the stream (it may have gone to the old server)
        self._server_changes = 0

    def attach(self) -> None:
        """Route every ``ctx.live.publish`` through the outbox."""
        self.ctx.live.announcer = self.announce
        self.ctx.live.on_published = self._sent.add

    async def announce(self, event: ConsoleEvent) -> None:
        """Commit the event's row, then publish it. The row gets ``ANNOUNCE_WAIT_S`` of engine
        time, never less than ``ANNOUNCE_MIN_REAL_S`` (a screen pop must not hold a caller
        from the queue): with the database slow or down the event goes to the stream at once,
        best effort, without an outbox id. Rows published here are marked in one batch by
        the next relay pass, not one write each on the call path.

        A slow write is never cancelled: a connection cancelled in the middle of its BEGIN
        goes back to the pool with the driver believing a transaction is open, and every
        later statement on it fails. It finishes in the background, and its row is marked
        as published (the event went out already)."""
        wait_s = max(ANNOUNCE_WAIT_S / self.ctx.clock.speed, ANNOUNCE_MIN_REAL_S)
        server_changes = self._server_changes
        write = asyncio.ensure_future(self._commit_row(event))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        done, _pending = await asyncio.wait({write}, timeout=wait_s)
        if not done:
            log.warning("event %s sent without its outbox row (database busy): its write "
                        "goes on in the background", event.name)
            published: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            late = asyncio.ensure_future(self._late_row(write, published, server_changes))
            self._late.add(late)
            late.add_done_callback(self._late.discard)
            try:
                published.set_result(await self.ctx.live.publish_direct(event))
            finally:
                if not published.done():  # cancelled: nothing says Redis has it
                    published.set_result(False)
            return
        try:
            entry = write.result()
        except STORAGE_ERRORS as exc:
            log.warning("event %s sent without its outbox row (database busy or down): %s",
                        event.name, describe(exc))
            await self.ctx.live.publish_direct(event)
            return
        if await self.ctx.live.publish_entry(entry.outbox_id, entry.event):
            self._note_sent(entry.outbox_id, server_changes)
        # else Redis refused: the relay publishes it

    async def _commit_row(self, event: ConsoleEvent) -> Announcement:
        async with self.ctx.sessions(urgent=event.caller_waits) as session:
            return await outbox.add_committed(session, event, self.ctx.now())

    async def _late_row(self, write: asyncio.Future[Announcement],
                        published: asyncio.Future[bool], server_changes: int) -> None:
        """A row committed after its event was sent directly: marked published if Redis took
        that event, else left unpublished for the relay (the event is never lost to a Redis
        refusal while the row was still being written)."""
        sent = await published
        try:
            entry = await write
        except STORAGE_ERRORS:
            return
        if sent:
            self._note_sent(entry.outbox_id, server_changes)

    def _note_sent(self, outbox_id: int, server_changes: int) -> None:
        """The row's event is in the stream, to be marked by the next pass; unless a new Redis
        server was found since it was sent: then it is left for the relay to send again."""
        if server_changes == self._server_changes:
            self._sent.add(outbox_id)

    async def close(self) -> None:
        """Wait for the outbox rows still being written (``mark_sent`` then marks them)."""
        await asyncio.gather(*self._writes, *self._late, return_exceptions=True)

    async def mark_sent(self) -> None:
        """Record as published, in one write, the rows ``announce`` published."""
        if not self._sent:
            return
        sent = set(self._sent)
        try:
            async with self.ctx.writing(urgent=True) as session:
                await outbox.mark_published(session, sorted(sent), self.ctx.now())
        except STORAGE_ERRORS as exc:  # kept for the next pass
            log.warning("%d outbox rows not marked published yet: %s", len(sent),
                        describe(exc))
            return
        self._sent -= sent

    async def publish(self, entries: Iterable[Announcement]) -> int:
        return await publish_committed(self.ctx, entries)

    async def relay_once(self) -> int:
        """Follow the stream's Redis server, mark what ``announce`` sent, publish what is
        still unpublished and trim the stream; returns rows published late.

        A new server is looked for first, so that what the old one may have lost goes out
        again at once, even while rows are still being written. Then the rows whose event
        already went out directly get ``LATE_WAIT_S`` to finish committing (or fail): read
        while committing, such a row would look unpublished and go out twice."""
        await self._follow_server()
        if self._late:  # each row settled: marked, or left for us
            await asyncio.wait(set(self._late), timeout=LATE_WAIT_S)
        await self.mark_sent()
        total = 0
        for _ in range(RELAY_BATCHES):
            async with self.ctx.sessions(urgent=True) as session:
                entries = [entry for entry in await outbox.pending(session, BATCH)
                           if entry.outbox_id not in self._sent]
            if not entries:
                break
            sent = await self.publish(entries)
            total += sent
            if sent < len(entries):
                break
        if total:
            log.info("outbox: %d events published late", total)
        max_age_s = self.ctx.settings.redis.event_stream_max_age_s
        await self.ctx.live.trim_older_than(max_age_s)
        await self._prune(max_age_s)
        return total

    async def _follow_server(self) -> None:
        """Where the stream's Redis server changed (restarted, or a replica promoted) since
        the last pass, the rows published since shortly before that pass are marked
        unpublished, those sent and not yet marked are left unmarked, and this pass sends
        them again (the consoles drop repeats by their outbox id)."""
        server = await self.ctx.live.server_id()
        if server is None:
            return
        now = self.ctx.now()
        if self._server is not None and server != self._server:
            assert self._server_seen_at is not None
            # sent, perhaps to the old server, and not marked yet: left for this relay
            self._sent.clear()
            self._server_changes += 1
            since = self._server_seen_at - timedelta(
                seconds=REPUBLISH_MARGIN_S * self.ctx.clock.speed)
            step = await storage_step(
                self.ctx.urgent_writing,
                lambda session: outbox.reopen_published_since(session, since),
                log, "events published before the Redis server changed not reopened",
                level=logging.WARNING)
            if not step.ok:
                return  # the next pass tries again
            log.warning("the Redis server behind the stream changed: %d events published "
                        "since %s go out again", step.value, since.isoformat())
        self._server, self._server_seen_at = server, now

    async def _prune(self, max_age_s: float) -> None:
        """Published rows as old as the stream's trimmed entries go, a batch a pass (after a
        disaster minute the outbox is the largest table)."""
        before = self.ctx.now() - timedelta(seconds=max_age_s)
        await storage_step(self.ctx.writing, lambda session: outbox.prune(session, before),
                           log, "published outbox rows not pruned")

    async def relay_forever(self) -> None:
        await repeat(self.relay_once,
                     lambda: asyncio.sleep(self.ctx.settings.redis.outbox_relay_s),
                     "outbox relay")
