"""What the engine holds until a channel hangs up, released by that channel's AMI ``Hangup``.

An answered outbound call holds a trunk line for as long as its channel is up, not only
until its flow has stored an outcome: the goodbye, a transfer to an operator and the
hangup itself all still use the line. The parts of the engine that count lines (the
priority notes in ``ivr/trunk.py``, the dispatcher's attempts) each ask this watch to run a
release once the channel with a given uniqueid hangs up. One AMI subscription serves them
all, and every other channel's hangup costs a dictionary look-up, not a task.

A hangup may be seen before the release is asked for (a short call, or the answer's report
late): the recent hangups are remembered, and such a release runs at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ivr.ami.errors import AmiError
from ivr.ami.link import AmiLink
from ivr.ami.messages import AmiMessage

log = logging.getLogger(__name__)

Release = Callable[[], Awaitable[None]]
RECENT_HANGUPS = 10_000  # uniqueids remembered, for a release asked for after its hangup
MAX_WAITING = 50_000  # channels awaited at once; beyond it the oldest is dropped (its lapse
# frees it), so hangups missed while AMI was down do not grow the engine without bound


class HangupWatch:
    """Releases to run when channels hang up, by uniqueid and by the holder's name."""

    def __init__(self) -> None:
        self._waiting: OrderedDict[str, dict[str, Release]] = OrderedDict()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[Any]] = set()

    def subscribe(self, ami: AmiLink) -> None:
        ami.on_event("Hangup", self.on_hangup)

    def on_hangup(self, event: AmiMessage) -> None:
        """The AMI ``Hangup`` handler: run what waited for this channel."""
        uniqueid = event.get("Uniqueid")
        if not uniqueid:
            return
        self._recent[uniqueid] = None
        while len(self._recent) > RECENT_HANGUPS:
            self._recent.popitem(last=False)
        for release in self._waiting.pop(uniqueid, {}).values():
            self._run(release)

    def hung_up(self, uniqueid: str) -> bool:
        """Whether this channel's hangup has been seen (recently)."""
        return uniqueid in self._recent

    def when_hung_up(self, uniqueid: str, holder: str, release: Release) -> None:
        """Run ``release`` once the channel hangs up (at once if it already has). A second
        release of the same holder for the same channel replaces the first."""
        if uniqueid in self._recent:
            self._run(release)
            return
        self._waiting.setdefault(uniqueid, {})[holder] = release
        while len(self._waiting) > MAX_WAITING:
            dropped, _releases = self._waiting.popitem(last=False)
            log.warning("hangup of channel %s no longer awaited (too many channels awaited)",
                        dropped)

    async def settle_missed(self, links: Sequence[AmiLink]) -> int:
        """After an AMI reconnection: the channels awaited here that no PBX has any more hung
        up while a link was down (their ``Hangup`` lost), and their releases run now; the
        number of them. Each PBX is asked for its channels (CoreShowChannels); with a link
        down or a listing refused nothing is settled (a channel might be on that PBX)."""
        awaited = list(self._waiting)  # each existed before the listings were asked for
        if not awaited:
            return 0
        live: set[str] = set()
        for link in links:
            if not getattr(link, "connected", False):
                return 0
            try:
                listing = await link.action("CoreShowChannels")
            except AmiError as exc:
                log.warning("channels not listed after the reconnection: %s", exc)
                return 0
            if not isinstance(listing, list):
                return 0
            live.update(message.get("Uniqueid") or "" for message in listing)
        gone = [uniqueid for uniqueid in awaited if uniqueid not in live]
        for uniqueid in gone:
            self.on_hangup(AmiMessage([("Event", "Hangup"), ("Uniqueid", uniqueid)]))
        if gone:
            log.warning("%d channels hung up while the AMI link was down: released", len(gone))
        return len(gone)

    @property
    def waiting(self) -> int:
        """Channels whose hangup is awaited now."""
        return len(self._waiting)

    def _run(self, release: Release) -> None:
        task = asyncio.ensure_future(release())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("release at hangup failed", exc_info=task.exception())

    async def settled(self) -> None:
        """Wait until every release started so far has ended."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the releases still running and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
