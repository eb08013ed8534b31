"""A screen pop's card on an operator's screen before the operators' phones ring.

A console sends a call's screen pop to its operators' live pages that show it
(``/live/events?screen=1``, the live screen's own stream), and each page, once the card is in
its DOM, says so (``POST /live/shown``). When every page that was open to show it has, the
console records that as an answer (:class:`~ivr.acks.Acknowledgements`, key
``<prefix>pop_seen:<uniqueid>``). The call's flow, having published the pop, waits for that
answer for at most ``POP_SEEN_WAIT_S`` before it lets the call into the queue: an operator
whose phone rings already sees who is calling, and a caller never waits longer than that for
a screen.

The flow waits only when a live page that would show the card is open. Each console keeps,
per region its open pages cover, a member ``<region>|<console id>`` in the sorted set
``<prefix>pop_watchers`` scored with its expiry, renewed while the pages are open
(:class:`OpenScreens`); every engine reads the set once a second (:class:`WatchedRegions`).
With no console, no page of the call's region, or Redis down, the call goes on at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Iterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dispatch.regions import Place, RegionScope
from ivr.acks import Acknowledgements

log = logging.getLogger(__name__)

POP_SEEN_WAIT_S = 0.15  # the longest a caller waits for their card to reach the screens
WATCH_TTL_S = 15.0  # a console gone without a word stops being waited for after this
RENEW_S = 5.0
REFRESH_S = 1.0
REDIS_TIMEOUT_S = 1.0
REDIS_ERRORS = (RedisError, OSError, TimeoutError)


def watchers_key(prefix: str) -> str:
    return f"{prefix}pop_watchers"


def seen_key(prefix: str, uniqueid: str) -> str:
    return f"{prefix}pop_seen:{uniqueid}"


def is_uniqueid(text: str) -> bool:
    """An Asterisk channel uniqueid (``1733390000.42``, or a simulator's like it): nothing
    else from an event goes into a key."""
    return 0 < len(text) <= 64 and all((c.isascii() and c.isalnum()) or c in "._-" for c in text)


class OpenScreens:
    """The console's side: which regions its live pages cover, kept in Redis while open."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._key = watchers_key(prefix)
        self._console = secrets.token_hex(8)
        self._open: Counter[RegionScope] = Counter()
        self._announced: set[str] = set()
        self._failing = False
        self._renewed = asyncio.Event()

    def _member(self, region: str) -> str:
        return f"{region}|{self._console}"

    @contextlib.contextmanager
    def opened(self, scope: RegionScope) -> Iterator[None]:
        """While a page of ``scope`` is open (a region's first page and its last are announced
        by the renewal they wake)."""
        self._open[scope] += 1
        if self._open[scope] == 1:
            self._renewed.set()
        try:
            yield
        finally:
            self._open[scope] -= 1
            if self._open[scope] <= 0:
                del self._open[scope]
                self._renewed.set()

    def showing(self, place: Place | None) -> int:
        """How many of this console's open pages show a pop of ``place`` (every page, for
        an unknown caller's)."""
        if place is None or place == Place():
            return sum(self._open.values())
        return sum(n for scope, n in self._open.items() if scope.covers(place))

    async def renew(self) -> None:
        """Put this console's regions in the set (and drop the ones no page covers now)."""
        regions = {str(scope) for scope in self._open}
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                pipe = self._client.pipeline(transaction=False)
                for region in self._announced - regions:
                    pipe.zrem(self._key, self._member(region))
                now = time.time()
                pipe.zremrangebyscore(self._key, "-inf", now)  # consoles gone silently
                if regions:
                    pipe.zadd(self._key, {self._member(r): now + WATCH_TTL_S for r in regions})
                await pipe.execute()
            self._announced = regions
            self._failing = False
        except REDIS_ERRORS as exc:
            if not self._failing:  # once an outage, not every renewal
                log.warning("open live screens not announced (Redis unavailable): %s", exc)
            self._failing = True

    async def renew_forever(self) -> None:
        """Renew every RENEW_S, and at once when a region gains its first page or loses
        its last."""
        while True:
            self._renewed.clear()
            await self.renew()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RENEW_S):
                    await self._renewed.wait()

    async def withdraw(self) -> None:
        """The console stops: its pages are no longer waited for."""
        with contextlib.suppress(*REDIS_ERRORS):
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                regions = self._announced | {str(scope) for scope in self._open}
                members = [self._member(region) for region in regions]
                if members:
                    await self._client.zrem(self._key, *members)


class WatchedRegions:
    """The engine's side: the regions some console's live page covers now, read each
    second, and the wait for a call's card to reach one of those pages."""

    def __init__(self, client: aioredis.Redis, prefix: str, acks: Acknowledgements) -> None:
        self._client = client
        self._prefix = prefix
        self._acks = acks
        self.scopes: frozenset[RegionScope] = frozenset()

    def watched(self, place: Place) -> bool:
        """A page that would show a pop of ``place`` is open (any page, for an unknown
        caller: every operator sees those)."""
        if place == Place():
            return bool(self.scopes)
        return any(scope.covers(place) for scope in self.scopes)

    async def shown(self, uniqueid: str, place: Place, timeout_s: float = POP_SEEN_WAIT_S
                    ) -> bool | None:
        """Wait (at most ``timeout_s``) for the call's card to reach a page: True if it did,
        False if not in time, None when no open page would show it (no wait)."""
        if not self.watched(place):
            return None
        return await self._acks.wait_key(seen_key(self._prefix, uniqueid), timeout_s)

    async def refresh(self) -> None:
        now = time.time()
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                members = await self._client.zrangebyscore(watchers_key(self._prefix), now,
                                                            "+inf")
        except REDIS_ERRORS:
            self.scopes = frozenset()  # no page receives anything from a Redis we cannot reach
            return
        scopes = set()
        for member in members:
            text = member.decode() if isinstance(member, bytes) else str(member)
            with contextlib.suppress(ValueError):
                scopes.add(RegionScope.parse(text.partition("|")[0]))
        self.scopes = frozenset(scopes)

    async def refresh_forever(self, interval_s: float = REFRESH_S) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(interval_s)
