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

A step whose statements go in batches through the driver (``dispatch/driver_batch.py``: a
caller's registry read, menu order and call record on PostgreSQL) takes no slot
(``unadmitted``): it holds no connection while it waits, and its batch takes one connection
for up to 256 callers. Admitted, such steps were held to the pool's size, and so were their
batches.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar, Token
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.priority_gate import PriorityGate

_holding: ContextVar[bool] = ContextVar("holding_admitted_session", default=False)

# Sessions given back untouched and kept to be lent again, at most: a call's steps mostly
# write through the driver and never use their session, and a new one costs about 15 µs.
# A burst's callers each hold one while their batched statements are on their way (about
# 500 at once with 500 calls in progress), and none of those takes a slot.
MOST_IDLE = 1024


class AdmittedSessions:
    """``async with sessions()`` or ``sessions(urgent=True)``: a session, once admitted."""

    def __init__(self, maker: async_sessionmaker[AsyncSession], slots: int) -> None:
        self.maker = maker
        self.gate = PriorityGate(slots)
        self._idle: list[AsyncSession] = []

    def __call__(self, urgent: bool = False) -> _Admitted:
        return _Admitted(self, urgent)

    def urgent(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """``sessions(urgent=True)``, for the helpers that take a session factory."""
        return _Admitted(self, True)

    def unadmitted(self) -> _Unadmitted:
        """A session that takes no slot, for a step that only sends batched statements."""
        return _Unadmitted(self)

    def lend(self) -> AsyncSession:
        """A session no one holds: one given back untouched, or a new one."""
        return self._idle.pop() if self._idle else self.maker()

    async def give_back(self, session: AsyncSession) -> None:
        """Close ``session`` as ``async with`` would (to completion, even if the caller is
        cut off), unless it holds nothing: then it is kept to be lent again (closing it
        would cost a task and a greenlet, about 55 µs)."""
        if _untouched(session):
            if len(self._idle) < MOST_IDLE:
                self._idle.append(session)
            return
        await asyncio.shield(asyncio.ensure_future(session.close()))


class _Admitted:
    """One ``async with`` of ``AdmittedSessions``: a class, not a generator, as every step
    of every call passes one."""

    __slots__ = ("_nested", "_session", "_sessions", "_token", "_urgent")

    def __init__(self, sessions: AdmittedSessions, urgent: bool) -> None:
        self._sessions, self._urgent = sessions, urgent
        self._session: AsyncSession | None = None
        self._token: Token[bool] | None = None
        self._nested = False

    async def __aenter__(self) -> AsyncSession:
        # a session opened inside another of the same task takes an overflow connection
        # rather than queue behind itself
        self._nested = _holding.get()
        if not self._nested:
            await self._sessions.gate._enter(self._urgent)
            self._token = _holding.set(True)
        self._session = self._sessions.lend()
        return self._session

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._session is not None
        try:
            await self._sessions.give_back(self._session)
        finally:
            if not self._nested:
                assert self._token is not None
                _holding.reset(self._token)
                self._sessions.gate._pass_on()


class _Unadmitted:
    """One ``async with`` of ``AdmittedSessions.unadmitted``: a lent session, no slot."""

    __slots__ = ("_session", "_sessions")

    def __init__(self, sessions: AdmittedSessions) -> None:
        self._sessions = sessions
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> AsyncSession:
        self._session = self._sessions.lend()
        return self._session

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._session is not None
        await self._sessions.give_back(self._session)


def _untouched(session: AsyncSession) -> bool:
    """Nothing was begun, loaded, added or noted in ``session``: as good as a new one."""
    return not (session.in_transaction() or session.identity_map or session.new
                or session.deleted or session.info)
