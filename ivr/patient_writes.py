"""Background writes that wait their turn and are tried again, never dropped on a busy day.

A queue event or a finished call's record is written after the caller has gone on. On a
disaster minute there are tens of thousands of them; written each on its own and given up
after one failure, a burst or a database restarting would lose them. Here each goes to one
of a few lanes (by its key, so one call's writes keep their order), and a lane's worker
writes them one after another, each until it is stored: a storage error is logged and the
same write is tried again after a growing pause. Only a stop that outlasts its bound, or a
write that is a bug (any other exception), loses one, and that is logged at ERROR.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import zlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from ivr.storage_steps import storage_step, stored_with_retries

if TYPE_CHECKING:
    from ivr.context import EngineContext

log = logging.getLogger(__name__)

Sessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]
LANES = 16  # writes at once at most (the pool's slots bound them too)
CLOSE_GIVE_UP_S = 10.0  # at a stop, writes still refused after this long are lost (logged)


@dataclass(frozen=True, slots=True)
class PatientWrite:
    key: str  # whose write (a call's uniqueid): one key's writes keep their order
    what: str  # for the log: "queue event for 1712345678.12"
    work: Callable[[AsyncSession], Awaitable[object]]
    on_stored: Callable[[], None] | None = None  # once the write is stored, now or later
    sessions: Sessions | None = None  # where its session comes from (else ctx.writing)


class PatientWrites:
    """``store`` or ``add`` a write; ``close`` at the engine's stop stores what is left."""

    def __init__(self, ctx: EngineContext, lanes: int = LANES) -> None:
        self.ctx = ctx
        self._lanes: list[collections.deque[PatientWrite]] = [
            collections.deque() for _ in range(lanes)]
        self._workers: list[asyncio.Task[None] | None] = [None] * lanes
        self._closing_since: float | None = None

    async def store(self, key: str, what: str,
                    work: Callable[[AsyncSession], Awaitable[object]],
                    on_stored: Callable[[], None] | None = None,
                    sessions: Sessions | None = None) -> bool:
        """Write now, for a caller that can wait for it: True once stored. Refused, or the
        caller cancelled while it waits, it is tried again in the background (after the
        key's writes already waiting there), and False. The writes must be idempotent: one
        cut off mid-way is written again. ``on_stored`` runs once it is stored, whichever
        way. ``sessions``: where the write's session comes from (``ctx.writing`` if None)."""
        if not self._lanes[self._lane(key)] and self._closing_since is None:
            try:
                step = await storage_step(sessions or self.ctx.writing, work, log,
                                          "%s not stored yet, trying again in the background",
                                          what, level=logging.WARNING)
            except asyncio.CancelledError:  # the caller is cut off (a stop): the lane writes it
                self.add(key, what, work, on_stored, sessions)
                raise
            if step.ok:
                if on_stored is not None:
                    on_stored()
                return True
        self.add(key, what, work, on_stored, sessions)
        return False

    def add(self, key: str, what: str, work: Callable[[AsyncSession], Awaitable[object]],
            on_stored: Callable[[], None] | None = None,
            sessions: Sessions | None = None) -> None:
        """Write in the background, after the key's writes already waiting."""
        if self._closing_since is not None:
            log.error("%s not stored: the engine is stopping", what)
            return
        index = self._lane(key)
        self._lanes[index].append(PatientWrite(key, what, work, on_stored, sessions))
        worker = self._workers[index]
        if worker is None or worker.done():
            self._workers[index] = asyncio.create_task(self._drain(index),
                                                       name=f"patient writes {index}")

    def _lane(self, key: str) -> int:
        return zlib.crc32(key.encode()) % len(self._lanes)

    async def _drain(self, index: int) -> None:
        """Store the lane's writes in order, each until stored; ends when the lane is empty."""
        lane = self._lanes[index]
        loop = asyncio.get_running_loop()
        while lane:
            write = lane[0]
            try:
                step = await stored_with_retries(
                    write.sessions or self.ctx.writing, write.work, log,
                    "%s not stored yet (try %d), trying again",
                    write.what, give_up=lambda: self._stop_given_up(loop.time()))
            except Exception:
                log.exception("%s not stored: it failed", write.what)
            else:
                if not step.ok:
                    log.error("%s lost at the stop", write.what)
                elif write.on_stored is not None:
                    write.on_stored()
            lane.popleft()

    def _stop_given_up(self, now: float) -> bool:
        """The engine has been stopping for CLOSE_GIVE_UP_S: refused writes are lost."""
        return self._closing_since is not None and now - self._closing_since >= CLOSE_GIVE_UP_S

    async def close(self) -> None:
        """Store what is left (giving up on refused writes after CLOSE_GIVE_UP_S); a stop
        that cancels this loses the rest, each logged."""
        self._closing_since = asyncio.get_running_loop().time()
        workers = [worker for worker in self._workers if worker is not None]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            for lane in self._lanes:
                for write in lane:
                    log.error("%s lost at the stop", write.what)
                lane.clear()
