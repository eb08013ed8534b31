"""The trunk shared by priority: emergency call-backs and family alerts hold lines that the
other outbound calls leave free.

Every engine notes each emergency call-back and family alert it places in one Redis sorted
set (``<prefix>trunk:priority``, scored by when the note lapses, so a crashed engine's notes
expire). A note is made before the call is dialled and kept while it rings; once the call
is answered it is kept under the call's uniqueid until the AMI ``Hangup`` of that channel
(``ivr/hangups.py``; should the hangup be missed, until a long lapse): an answered call
holds its line as long as it talks. The dispatcher's claims count the notes: vendor offers
and quality callbacks get the trunk's channels less those in use, and caring calls that
less ``[care] reserve_channels`` more, so a line is free for the next emergency.

A priority call never waits behind a call not yet dialled. When every line is taken by calls
already on it, it waits for the next one to end (its note already keeps the dispatcher from
giving that line to anything else), up to ``[dial] line_wait_s``, then dials regardless: the
carrier, not the engine, has the last word. Those past their wait go one a look per engine
(``OVERDUE_PER_LOOK`` every ``LINE_POLL_S``, oldest first), so a burst of alerts reaches the
carrier paced, not all at once. Priority calls waiting together take the lines
that free up first come, first served (``<prefix>trunk:waiting``, scored by when each began
to wait): a free line never stays unused because more calls wait than it can carry. With
Redis down the notes are not kept and the count is 0: emergencies still go out at once.
However many priority calls wait, each engine looks once every ``LINE_POLL_S`` for all of
its waiters (one Redis transaction), and the other calls on the trunk are counted once per
look (``SharedCount``): a burst of emergencies does not turn into a storm of Redis
transactions and database reads that starves the callers still arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ivr.hangups import HangupWatch
from ivr.storage_steps import describe

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
LINE_POLL_S = 0.2  # real seconds between looks for a free line
OVERDUE_PER_LOOK = 1  # calls past their wait that dial regardless, per engine and look
WAITER_LAPSE_S = 30.0  # a waiter's entry outlives its wait by this much (a crashed engine's)
COUNT_TIMEOUT_S = 1.0  # a database that does not answer at once does not hold a call back


class SharedCount:
    """One count for every caller at once: a count made less than ``fresh_s`` ago is
    reused, and callers arriving while one is made wait for it. A caller may ask for a count
    begun no earlier than ``since`` (a priority call that has just noted itself must be
    counted against rows read after its note: of it and a claim racing it, one then sees
    the other); only such a caller starts a count while another is on its way. A count
    that fails or takes over ``COUNT_TIMEOUT_S`` raises to each of them."""

    def __init__(self, count: Callable[[], Awaitable[int]], fresh_s: float = LINE_POLL_S
                 ) -> None:
        self._count = count
        self._fresh_s = fresh_s
        self._value: int | None = None
        self._began = 0.0  # when the count in ``_value`` began (monotonic)
        self._made_at = 0.0  # ... and when it was made
        self._pending: asyncio.Future[int] | None = None
        self._pending_began = 0.0
        self._counts: set[asyncio.Future[int]] = set()

    async def __call__(self, since: float = 0.0) -> int:
        now = time.monotonic()
        if (self._value is not None and now - self._made_at < self._fresh_s
                and self._began >= since):
            return self._value
        pending = self._pending
        if pending is None or self._pending_began < since:
            pending = asyncio.ensure_future(self._made(now))
            pending.add_done_callback(self._done)
            self._pending, self._pending_began = pending, now
            self._counts.add(pending)
        return await asyncio.shield(pending)

    async def _made(self, began: float) -> int:
        value = await asyncio.wait_for(self._count(), COUNT_TIMEOUT_S)
        if began >= self._began:
            self._value, self._began, self._made_at = value, began, time.monotonic()
        return value

    def _done(self, future: asyncio.Future[int]) -> None:
        self._counts.discard(future)
        if self._pending is future:
            self._pending = None
        if not future.cancelled():
            future.exception()  # each waiter had it; none is left unretrieved

    async def close(self) -> None:
        """Cancel the counts in progress and wait for them to end."""
        counts = list(self._counts)
        for count in counts:
            count.cancel()
        await asyncio.gather(*counts, return_exceptions=True)


@dataclass
class PriorityLine:
    """One priority call's hold on the trunk; set ``uniqueid`` once it is answered."""

    uniqueid: str | None = None


@dataclass
class Waiter:
    """A priority call of this process waiting for its turn on the trunk."""

    member: str
    noted: float  # monotonic: when its note was made
    deadline: float  # monotonic: when it dials regardless
    turn: asyncio.Future[None]  # done when it may dial
    waits: asyncio.Future[None]  # done when a look found no line for it


def turns(waiters: list[Waiter], first: list[str], free: int, now: float
          ) -> tuple[list[Waiter], list[Waiter]]:
    """Of this engine's ``waiters``, those whose turn it is (among the ``first`` waiting of
    every engine that the ``free`` lines carry), and those that dial regardless: past their
    deadline, the oldest ``OVERDUE_PER_LOOK`` of them, so a burst is let out at a pace."""
    going = set(first[:max(free, 0)])
    in_turn = [waiter for waiter in waiters if waiter.member in going]
    overdue = sorted((waiter for waiter in waiters
                      if waiter.member not in going and now >= waiter.deadline),
                     key=lambda waiter: waiter.noted)
    return in_turn, overdue[:OVERDUE_PER_LOOK]


class PriorityLines:
    """The high-priority calls in flight across every engine."""

    def __init__(self, client: Redis, prefix: str, hangups: HangupWatch) -> None:
        self._client = client
        self.key = f"{prefix}trunk:priority"
        self.waiting_key = f"{prefix}trunk:waiting"
        self._hangups = hangups
        self._waiters: dict[str, Waiter] = {}
        self._keeper: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def holding(self, ttl_s: float, talk_ttl_s: float,
                      lines_taken: SharedCount | None = None,
                      trunk: int = 0, wait_s: float = 0.0,
                      on_wait: Callable[[], Awaitable[None]] | None = None
                      ) -> AsyncIterator[PriorityLine]:
        """Note one high-priority call for the block (at most ``ttl_s`` real seconds) and,
        if the block marks it answered, until its channel hangs up (at most ``talk_ttl_s``).
        With ``lines_taken`` (the other calls on the trunk, a ``SharedCount``) and ``trunk``,
        first wait up to ``wait_s`` real seconds for a free line; ``on_wait`` runs (while
        the call keeps its place) if the first look finds none."""
        member = uuid.uuid4().hex
        try:
            await self._client.zadd(self.key, {member: time.time() + ttl_s + wait_s})
        except REDIS_ERRORS as exc:
            log.warning("priority call not noted (Redis unavailable): %s", exc)
        line = PriorityLine()
        try:
            if lines_taken is not None and trunk > 0:
                await self._free_line(member, lines_taken, trunk, wait_s, on_wait)
            yield line
        finally:
            await self._keep_or_free(member, line, talk_ttl_s)

    async def _free_line(self, member: str, lines_taken: SharedCount, trunk: int,
                         wait_s: float, on_wait: Callable[[], Awaitable[None]] | None = None
                         ) -> None:
        """Until this call's turn: the calls on the trunk (priority calls ringing or talking,
        the dispatcher's) and the priority calls that began to wait before it leave it a
        line. One look serves every call of this process waiting (``_keep_turns``)."""
        noted = time.monotonic()  # the note was made before this: count rows read after it
        try:
            await self._client.zadd(self.waiting_key, {member: time.time()})
        except REDIS_ERRORS as exc:
            log.warning("priority call's turn not kept (Redis unavailable): %s", exc)
            return
        loop = asyncio.get_running_loop()
        waiter = Waiter(member, noted, noted + wait_s, loop.create_future(),
                        loop.create_future())
        self._waiters[member] = waiter
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_turns(lines_taken, trunk, wait_s),
                                               name="trunk turns")
            self._keeper.add_done_callback(self._keeper_ended)
        try:
            await asyncio.wait({waiter.turn, waiter.waits}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.turn.done() and on_wait is not None:
                await on_wait()
            await waiter.turn
        finally:
            self._waiters.pop(member, None)
            with contextlib.suppress(*REDIS_ERRORS):
                await self._client.zrem(self.waiting_key, member)

    async def _keep_turns(self, lines_taken: SharedCount, trunk: int, wait_s: float) -> None:
        """While calls of this process wait: one look a LINE_POLL_S for all of them, and
        the first waiters (of every engine) that the free lines can carry go."""
        while self._waiters:
            waiters = list(self._waiters.values())
            try:
                first, on_line = await self._first_waiting(trunk, wait_s)
                # counted against rows read after the newest note of those looked at
                free = trunk - on_line - await lines_taken(max(w.noted for w in waiters))
            except Exception as exc:  # a count that cannot be made never holds a call back
                log.warning("trunk lines not counted (%s): dialling", describe(exc))
                going, overdue = waiters, []
            else:
                going, overdue = turns(waiters, first, free, time.monotonic())
            if overdue:
                log.warning("no trunk line free after %.0f s (%d calls on %d lines, "
                            "%d priority calls waiting): dialling the longest waiting",
                            wait_s, trunk - free, trunk, len(first))
            for waiter in [*going, *overdue]:
                self._waiters.pop(waiter.member, None)
                if not waiter.turn.done():
                    waiter.turn.set_result(None)
            for waiter in self._waiters.values():
                if not waiter.waits.done():  # looked at, and no line for it yet
                    waiter.waits.set_result(None)
            if self._waiters:
                await asyncio.sleep(LINE_POLL_S)

    def _keeper_ended(self, keeper: asyncio.Task[None]) -> None:
        """A look that failed unforeseen, or a stop, never leaves a call waiting for good:
        the calls still waiting dial."""
        if not keeper.cancelled() and keeper.exception() is None:
            return  # it ended with no call left waiting
        if not keeper.cancelled():
            log.error("looking for trunk lines failed: the waiting calls dial",
                      exc_info=keeper.exception())
        for waiter in list(self._waiters.values()):
            if not waiter.turn.done():
                waiter.turn.set_result(None)

    async def _first_waiting(self, trunk: int, wait_s: float) -> tuple[list[str], int]:
        """(the first ``trunk`` priority calls waiting, oldest first, across every engine;
        priority calls ringing or talking)."""
        now = time.time()
        pipe = self._client.pipeline(transaction=True)
        pipe.zremrangebyscore(self.key, "-inf", now)
        pipe.zremrangebyscore(self.waiting_key, "-inf", now - wait_s - WAITER_LAPSE_S)
        pipe.zcard(self.key)
        pipe.zcard(self.waiting_key)
        pipe.zrange(self.waiting_key, 0, max(trunk - 1, 0))
        _lapsed, _gone, noted, waiting, first = await pipe.execute()
        members = [m.decode() if isinstance(m, bytes) else str(m) for m in first]
        return members, max(0, int(noted) - int(waiting))

    async def close(self) -> None:
        """Stop looking for lines (the calls that waited have ended)."""
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)

    async def _keep_or_free(self, member: str, line: PriorityLine, talk_ttl_s: float) -> None:
        uniqueid = line.uniqueid
        with contextlib.suppress(*REDIS_ERRORS):
            if uniqueid is not None and not self._hangups.hung_up(uniqueid):
                await self._client.zadd(self.key, {uniqueid: time.time() + talk_ttl_s})
                self._hangups.when_hung_up(uniqueid, "priority", lambda: self._free(uniqueid))
            await self._client.zrem(self.key, member)

    async def _free(self, uniqueid: str) -> None:
        with contextlib.suppress(*REDIS_ERRORS):
            await self._client.zrem(self.key, uniqueid)

    async def in_use(self) -> int:
        """High-priority calls ringing, talking or waiting for a line now (0 if Redis does
        not answer)."""
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.zremrangebyscore(self.key, "-inf", time.time())
            pipe.zcard(self.key)
            _removed, count = await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("priority calls not counted (Redis unavailable): %s", exc)
            return 0
        return int(count)
