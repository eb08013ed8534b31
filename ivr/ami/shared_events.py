"""AMI work that one engine does for all the engines on a PBX.

Every engine keeps an AMI link to each PBX, and each link receives every event. Some handlers
do the same work whichever engine runs them: the queue records, the recording index, the
dialplan's alerts forwarded to the consoles. Run by every engine, each call's events were
stored once per engine: with two engines on a disaster minute, half of each engine's CPU.

Here the engine holding a PBX's event lease in Redis runs those handlers; the others keep the
events of the last ``replay_s`` seconds and, when they take the lease (its holder stopped
refreshing it: stopped, killed, stalled or cut from Redis), run the kept events in order
before the new ones. The handlers are idempotent, so an event run twice around a handover does
no harm, and one whose write the killed holder had not finished is written by its successor.
With Redis unreachable the lease answers yes and every engine runs them, as one engine alone.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence

from ivr.claims import Leases

from .events import EventHandler, EventRegistry
from .link import AmiLink
from .messages import AmiMessage

log = logging.getLogger(__name__)

LEASE_S = 3.0  # the holder refreshes it every REFRESH_S; a silent holder loses it after this
REFRESH_S = 1.0
REPLAY_S = 60.0  # longer than a busy holder's writes take to be stored
KEEP_MAX = 200_000  # events kept at most while another engine leads (memory bound)


class SharedEvents:
    """The shared handlers of one PBX link, run while this engine holds the PBX's lease."""

    def __init__(self, link: AmiLink, leases: Leases, pbx: str, *,
                 lease_s: float = LEASE_S, replay_s: float = REPLAY_S,
                 keep_max: int = KEEP_MAX,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._link, self._leases, self._clock = link, leases, clock
        self.lease = f"ami-events:{pbx}"
        self._lease_s, self._replay_s = lease_s, replay_s
        self._handlers = EventRegistry()
        self._kept: collections.deque[tuple[float, AmiMessage]] = collections.deque(
            maxlen=keep_max)
        self.leading = False

    def on_event(self, name: str, handler: EventHandler) -> None:
        """Run ``handler`` for the events named ``name`` (an exact name, no pattern) while
        this engine leads."""
        if any(mark in name for mark in "*?["):
            raise ValueError(f"a shared handler takes an exact event name, not {name!r}")
        if name not in self._handlers.patterns:  # the link hands each name's events on once
            self._link.on_event(name, self._receive)
        self._handlers.register(name, handler)

    def _receive(self, message: AmiMessage) -> None:
        if self.leading:
            self._handlers.dispatch(message)
            return
        now = self._clock()
        self._kept.append((now, message))
        self._forget_before(now - self._replay_s)

    def _forget_before(self, moment: float) -> None:
        kept = self._kept
        while kept and kept[0][0] < moment:
            kept.popleft()

    async def hold(self) -> bool:
        """Take or keep the lease while the link is up (hand it over while it is down); on
        taking it, run the kept events first. True if leading."""
        if not self._link.connected:  # events go by unheard: another engine's link hears them
            if self.leading:
                await self.close_lease()
            return False
        held = await self._leases.refresh(self.lease, self._lease_s)
        if held and not self.leading:
            self._forget_before(self._clock() - self._replay_s)
            log.info("events of %s: this engine leads, %d kept events run again", self.lease,
                     len(self._kept))
            while self._kept:  # no await in between: new events come after these
                self._handlers.dispatch(self._kept.popleft()[1])
            self.leading = True
        elif not held and self.leading:
            log.info("events of %s: another engine leads", self.lease)
            self.leading = False
        return held

    async def close_lease(self) -> None:
        """Hand the lease over: another engine takes it at its next refresh."""
        if self.leading:
            log.info("events of %s: handed over", self.lease)
            self.leading = False
            await self._leases.release(self.lease)

    async def close(self) -> None:
        """Hand the lease over and end the handlers still running."""
        await self.close_lease()
        await self._handlers.cancel_handlers()


class SharedPbxEvents:
    """``SharedEvents`` for each of several PBX links, as one event source."""

    def __init__(self, links: Sequence[tuple[str, AmiLink]], leases: Leases) -> None:
        self.boxes = [SharedEvents(link, leases, name) for name, link in links]

    def on_event(self, name: str, handler: EventHandler) -> None:
        for box in self.boxes:
            box.on_event(name, handler)

    async def hold(self) -> None:
        for box in self.boxes:
            await box.hold()

    async def hold_forever(self, every_s: float = REFRESH_S) -> None:
        """Refresh every box's lease every ``every_s`` until cancelled."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.hold()
            except Exception:  # a bug here must not stop the refreshing
                log.exception("AMI event leases not refreshed")

    async def close(self) -> None:
        for box in self.boxes:
            await box.close()
