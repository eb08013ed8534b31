"""The engine's database sessions, admitted so the pool never runs dry under a burst.

On a disaster minute thousands of call flows, escalations and AMI events each want a session
at once. Straight from the pool, the ones beyond its size wait in SQLAlchemy's queue, in no
order, and fail after its timeout: a caller's identity read behind a thousand queue events,
and queue events dropped. Here every session first takes a slot of a priority gate with as
many slots as the pool keeps connections: a caller's read or write (``urgent``) goes before
every background one waiting, and a background write waits its turn instead of failing.

A session opened while the same task already holds one (a helper's own read inside a write)
does not queue again, which could wait forever on itself: it takes one of the pool's
overflow connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.priority_gate import PriorityGate

_holding: ContextVar[bool] = ContextVar("holding_admitted_session", default=False)


class AdmittedSessions:
    """``sessions()`` or ``sessions(urgent=True)``: a session, once admitted."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], slots: int) -> None:
        self.maker = maker
        self.gate = PriorityGate(slots)

    @contextlib.asynccontextmanager
    async def __call__(self, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        if _holding.get():
            session = self.maker()
            try:
                yield session
            finally:
                await _close(session)
            return
        async with self.gate.hold(urgent):
            token = _holding.set(True)
            session = self.maker()
            try:
                yield session
            finally:
                try:
                    await _close(session)
                finally:
                    _holding.reset(token)

    def urgent(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """``sessions(urgent=True)``, for the helpers that take a session factory."""
        return self(urgent=True)


async def _close(session: AsyncSession) -> None:
    """Close ``session`` as ``async with`` would (to completion, even if the caller is cut
    off), unless it holds nothing: most call-path steps write through the driver and never
    use their session's connection, and a close costs a task and a greenlet (about 55 µs)."""
    if session.in_transaction() or session.identity_map:
        await asyncio.shield(asyncio.ensure_future(session.close()))
