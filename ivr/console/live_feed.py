"""The console's live feed: one Redis stream reader per process, fanned out to every page.

One task reads ``<prefix>events`` with XREAD and hands each entry to every subscriber whose
account may see it (``RegionScope.covers`` the event's place; an event without a place, an
unknown caller say, goes to everyone). A subscriber is one open page. It starts after a
stream id (the SSE ``Last-Event-ID``, or the id the page was rendered at) and receives every
later entry exactly once, in stream order: what it missed is read back with XRANGE, what
the reader hands it later is skipped up to the last id it delivered, and an entry the outbox
relay published twice (same ``outbox_id``) is delivered once.

Each subscriber's queue is bounded. A page that reads too slowly never holds the reader or
the other pages up: once its queue is full the reader drops it from the queue, and the page
resumes from its last delivered id with XRANGE, then rejoins the live queue. While Redis is
down every page is told ``reconnecting``, and the reader resumes from the last id it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dispatch.console_events import ConsoleEventError, outbox_id_of, parse_entry
from dispatch.regions import Place, RegionScope

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
QUEUE_SIZE = 1000  # events a page may fall behind before it catches up from Redis
READ_BATCH = 500
BLOCK_MS = 1000
RETRY_MIN_S, RETRY_MAX_S = 0.2, 2.0
HEARTBEAT_S = 15.0  # a page hears something at least this often (proxies, dead peers)
BATCH_MAX = 200  # events a page gets in one write at most
SEEN_OUTBOX_IDS = 4096  # per subscriber: duplicates are adjacent in practice


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair; ``"0-0"`` for anything that is not one."""
    ms, _sep, seq = entry_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


def is_stream_id(text: str) -> bool:
    ms, sep, seq = text.partition("-")
    return bool(sep) and ms.isdigit() and seq.isdigit() and len(text) <= 41


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One stream entry as the consoles see it."""

    id: str  # the stream entry id: also the SSE event id
    kind: str
    data: dict[str, Any]
    outbox_id: int | None
    place: Place | None  # None: shown to every operator
    raw_data: str = ""  # the entry's ``data`` JSON as stored: sent on without re-encoding

    @property
    def at_ms(self) -> int:
        return stream_id_key(self.id)[0]


def event_from_entry(entry_id: bytes | str, fields: Mapping[Any, Any]) -> LiveEvent | None:
    """A stream entry as the pages get it, read by the events' contract
    (``dispatch.console_events.parse_entry``); None, logged, for one that breaks it."""
    entry = _text(entry_id)
    try:
        event = parse_entry(fields)
        outbox_id = outbox_id_of(fields)
    except ConsoleEventError as exc:
        log.warning("stream entry %s is not a console event; skipped: %s", entry, exc)
        return None
    raw = next((_text(value) for key, value in fields.items() if _text(key) == "data"), "")
    place = getattr(event, "place", None)
    return LiveEvent(id=entry, kind=event.name.value, data=event.payload(),
                     outbox_id=outbox_id, place=place if isinstance(place, Place) else None,
                     raw_data=raw)


def visible_to(event: LiveEvent, scope: RegionScope) -> bool:
    """Inside the account's region, or about no known elder (shown to everyone)."""
    return place_visible(event.place, scope)


def place_visible(place: Place | None, scope: RegionScope) -> bool:
    """An event of ``place`` is shown to ``scope``: inside it, or of no known elder."""
    return place is None or place == Place() or scope.covers(place)


def wanted_by(event: LiveEvent, subscriber: Subscriber) -> bool:
    return ((subscriber.kinds is None or event.kind in subscriber.kinds)
            and visible_to(event, subscriber.scope))


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """Not an event: the feed's own state, for the page's banner."""

    state: str  # "live", "reconnecting", or "idle" (nothing for a while: a heartbeat)


Item = LiveEvent | FeedStatus


CATCH_UP = FeedStatus("catch_up")  # internal: the subscriber's queue overflowed
STOPPED = FeedStatus("stopped")  # internal: the feed stopped


@dataclass(eq=False)
class Subscriber:
    scope: RegionScope
    queue: asyncio.Queue[Item]
    kinds: frozenset[str] | None = None  # None: every kind
    overflowed: bool = False

    def offer(self, item: Item) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True  # it catches up from Redis
            self.replace_queue(CATCH_UP)

    def replace_queue(self, marker: FeedStatus | None = None) -> None:
        """Empty the queue (and leave ``marker`` alone in it)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        if marker is not None:
            self.queue.put_nowait(marker)


class LiveFeed:
    """Reads the event stream once and serves every subscriber of this process."""

    def __init__(self, client: aioredis.Redis, stream_key: str, *, queue_size: int = QUEUE_SIZE,
                 block_ms: int = BLOCK_MS, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.client = client
        self.stream_key = stream_key
        self.queue_size = queue_size
        self.block_ms = block_ms
        self.heartbeat_s = heartbeat_s
        self.position = "0-0"  # the last entry the reader has handed out
        self.connected = False
        self.catch_ups = 0  # subscribers that overflowed and read back from Redis
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        """Start reading from the stream's newest entry (or wherever Redis lets us, once up)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="console live feed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._started.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for subscriber in self._subscribers:
            subscriber.replace_queue(STOPPED)

    async def newest_id(self) -> str:
        """The id of the stream's newest entry, "0-0" if empty; raises if Redis is down."""
        newest = await self.client.xrevrange(self.stream_key, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    async def _run(self) -> None:
        delay = RETRY_MIN_S
        while True:
            try:
                if not self._started.is_set():
                    self.position = await self.newest_id()
                    self._connected(True)
                    self._started.set()
                reply = await self.client.xread({self.stream_key: self.position},
                                                count=READ_BATCH, block=self.block_ms)
            except REDIS_ERRORS as exc:
                if self.connected:
                    log.warning("console feed: Redis unavailable, retrying: %s", exc)
                self._connected(False)
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)
                continue
            delay = RETRY_MIN_S
            self._connected(True)
            for _stream, entries in reply or ():
                for entry_id, fields in entries:
                    self.position = _text(entry_id)
                    event = event_from_entry(entry_id, fields)
                    if event is not None:
                        self._fan_out(event)

    def _connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            for subscriber in list(self._subscribers):
                subscriber.offer(FeedStatus("live" if up else "reconnecting"))

    def _fan_out(self, event: LiveEvent) -> None:
        for subscriber in list(self._subscribers):
            if wanted_by(event, subscriber):
                subscriber.offer(event)

    async def subscribe(self, scope: RegionScope, since: str | None,
                        kinds: frozenset[str] | None = None,
                        heartbeat_s: float | None = None) -> AsyncIterator[Item]:
        """Every event ``scope`` may see (of ``kinds``, if given) after stream id ``since``
        (from now if None), in order and once each, with a FeedStatus whenever the feed goes
        down or comes back, and ``idle`` after ``heartbeat_s`` (the feed's) of silence."""
        batches = self.subscribe_batches(scope, since, kinds, heartbeat_s)
        try:
            async for batch in batches:
                for item in batch:
                    yield item
        finally:
            await batches.aclose()

    async def subscribe_batches(self, scope: RegionScope, since: str | None,
                                kinds: frozenset[str] | None = None,
                                heartbeat_s: float | None = None
                                ) -> AsyncIterator[list[Item]]:
        """What ``subscribe`` gives, a list at a time: everything already waiting for the
        subscriber comes at once (a page gets it in one write when the console is busy)."""
        quiet_s = self.heartbeat_s if heartbeat_s is None else heartbeat_s
        subscriber = Subscriber(scope, asyncio.Queue(self.queue_size), kinds)
        self._subscribers.add(subscriber)
        last = since if since is not None and is_stream_id(since) else self.position
        seen: OrderedDict[int, None] = OrderedDict()
        try:
            yield [FeedStatus("live" if self.connected else "reconnecting")]
            need_backlog = since is not None
            while True:
                if need_backlog:
                    batch: list[Item] = []
                    async for item in self._backlog(subscriber, last):
                        if isinstance(item, FeedStatus):
                            batch.append(item)
                        elif _fresh(item, last, seen):
                            last = item.id
                            batch.append(item)
                        if len(batch) >= BATCH_MAX:
                            yield batch
                            batch = []
                    if batch:
                        yield batch
                    need_backlog = False
                    continue
                if self._task is None:
                    return  # the feed stopped
                queue = subscriber.queue
                if queue.empty():
                    try:
                        async with asyncio.timeout(quiet_s):
                            first = await queue.get()
                    except TimeoutError:
                        yield [FeedStatus("idle")]
                        continue
                else:
                    first = queue.get_nowait()
                batch = []
                item: Item | None = first
                while item is not None:
                    if item is STOPPED:
                        if batch:
                            yield batch
                        return
                    if item is CATCH_UP:
                        self.catch_ups += 1
                        need_backlog = True
                        break  # the marker is alone in the queue: the backlog follows
                    if isinstance(item, FeedStatus):
                        batch.append(item)
                    elif _fresh(item, last, seen):
                        last = item.id
                        batch.append(item)
                    item = (queue.get_nowait() if not queue.empty() and len(batch) < BATCH_MAX
                            else None)
                if batch:
                    yield batch
        finally:
            self._subscribers.discard(subscriber)

    async def _backlog(self, subscriber: Subscriber, after: str) -> AsyncIterator[Item]:
        """Everything after ``after`` that Redis holds, read while the subscriber's queue
        fills anew (their overlap is skipped by id); waits out a Redis outage."""
        # Reset first: whatever the reader hands out from here on is queued, and the read
        # below covers everything up to then, so nothing falls between the two.
        subscriber.replace_queue()
        subscriber.overflowed = False
        start = f"({after}"
        down = False
        while True:
            try:
                entries = await self.client.xrange(self.stream_key, min=start, max="+",
                                                   count=READ_BATCH)
            except REDIS_ERRORS:
                if not down:
                    down = True
                    yield FeedStatus("reconnecting")
                await asyncio.sleep(RETRY_MIN_S)
                continue
            if down:
                down = False
                yield FeedStatus("live")
            for entry_id, fields in entries:
                event = event_from_entry(entry_id, fields)
                if event is not None and wanted_by(event, subscriber):
                    yield event
            if len(entries) < READ_BATCH:
                return
            start = f"({_text(entries[-1][0])}"


def _fresh(event: LiveEvent, last: str, seen: OrderedDict[int, None]) -> bool:
    """Not delivered yet: after ``last`` and, if it has one, a new outbox id."""
    if stream_id_key(event.id) <= stream_id_key(last):
        return False
    if event.outbox_id is not None:
        if event.outbox_id in seen:
            return False
        seen[event.outbox_id] = None
        if len(seen) > SEEN_OUTBOX_IDS:
            seen.popitem(last=False)
    return True


