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
            async with self.maker() as session:
                yield session
            return
        async with self.gate.hold(urgent):
            token = _holding.set(True)
            try:
                async with self.maker() as session:
                    yield session
            finally:
                _holding.reset(token)

    def urgent(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """``sessions(urgent=True)``, for the helpers that take a session factory."""
        return self(urgent=True)
