"""What every call flow needs from the running engine, gathered in one object."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import InitVar, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dispatch.outbound import outbound_lines
from ivr.acks import Acknowledgements
from ivr.admitted_sessions import AdmittedSessions
from ivr.clock import Clock
from ivr.config import Settings
from ivr.emergency_orders import EmergencyOrders
from ivr.handset_lines import HandsetLines
from ivr.hangups import HangupWatch
from ivr.live import LiveState
from ivr.patient_writes import PatientWrites
from ivr.pop_delivery import WatchedRegions
from ivr.priority_gate import PriorityGate
from ivr.prompts import PromptCatalogue
from ivr.trunk import PriorityLine, PriorityLines, SharedCount

if TYPE_CHECKING:
    from ivr.dispatcher import Dispatcher


@dataclass
class EngineContext:
    settings: Settings
    session_maker: InitVar[async_sessionmaker[AsyncSession]]
    live: LiveState
    prompts: PromptCatalogue
    clock: Clock
    acks: Acknowledgements  # family members' "press 1", shared between engine processes
    on_emergency: Callable[[int, int], None] | None = None  # (order id, elder id)
    dispatcher: Dispatcher | None = None  # offers orders to vendors; None if dispatch is off
    priority_lines: PriorityLines | None = None  # emergency call-backs and family alerts
    hangups: HangupWatch = field(default_factory=HangupWatch)  # what is held until a hangup
    handsets: HandsetLines = field(default_factory=HandsetLines)  # known without the database
    screens: WatchedRegions | None = None  # where an operator's live page shows pops now
    _write_gate: PriorityGate | None = None
    _batches_call_path: bool = field(init=False, default=False)
    # every session of the process, admitted by the pool's slots, a caller's first
    sessions: AdmittedSessions = field(init=False)
    # the dispatcher's calls on the trunk, counted once for every priority call waiting
    trunk_count: SharedCount = field(init=False)
    # emergency orders being stored while their callers are already queued
    emergency_orders: EmergencyOrders = field(init=False)
    # queue events and call records, written after the caller went on, each until stored
    patient_writes: PatientWrites = field(init=False)

    def __post_init__(self, session_maker: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = AdmittedSessions(session_maker, self.settings.database.pool_size)
        self.trunk_count = SharedCount(self._outbound_lines)
        self.emergency_orders = EmergencyOrders(self)
        self.patient_writes = PatientWrites(self)
        bind = session_maker.kw.get("bind")
        self._batches_call_path = (isinstance(bind, AsyncEngine)
                                   and bind.dialect.driver == "asyncpg")
        if self.settings.database.url.startswith("sqlite"):
            # SQLite has one writer. The call path writes synchronously (dispatch/hotpath.py);
            # an ORM write that awaits mid-transaction must not hold the lock meanwhile, so
            # every write in this process queues here first (ivr/priority_gate.py).
            self._write_gate = PriorityGate()

    def writing(self, urgent: bool = False
                ) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A session for one write transaction, serialised where the database requires it;
        ``urgent``: a caller on the line waits for it, so it goes before background writes."""
        if self._write_gate is None:
            return self.sessions(urgent)
        return self._gated_writing(self._write_gate, urgent)

    @contextlib.asynccontextmanager
    async def _gated_writing(self, gate: PriorityGate, urgent: bool
                             ) -> AsyncIterator[AsyncSession]:
        async with gate.hold(urgent), self.sessions(urgent) as session:
            yield session

    def batched(self, write: bool = False, urgent: bool = True
                ) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A session for a call-path step that only sends batched statements (its caller's
        registry read, menu order or call record): on PostgreSQL it takes no admission slot
        (``ivr/admitted_sessions.py``); elsewhere as ``writing`` (``write``) or ``sessions``."""
        if self._batches_call_path:
            return self.sessions.unadmitted()
        return self.writing(urgent) if write else self.sessions(urgent)

    def urgent_writing(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """``writing(urgent=True)``, for the helpers that take a session factory."""
        return self.writing(urgent=True)

    def holding_priority_line(self, on_wait: Callable[[], Awaitable[None]] | None = None
                              ) -> contextlib.AbstractAsyncContextManager[PriorityLine]:
        """Note an emergency call-back or a family alert from before it is dialled until it
        hangs up (``ivr/trunk.py``): the other outbound calls leave its line free. When every
        trunk line is taken by calls already on it, first wait for one to end (``on_wait``
        runs as the wait begins)."""
        if self.priority_lines is None:
            return contextlib.nullcontext(PriorityLine())
        dial, speed = self.settings.dial, self.clock.speed
        return self.priority_lines.holding(
            dial.ring_timeout_s / speed + 30.0, dial.max_call_s / speed,
            lines_taken=self.trunk_count, trunk=self.settings.dispatch.trunk_channels,
            wait_s=dial.line_wait_s / speed, on_wait=on_wait)

    async def _outbound_lines(self) -> int:
        """Trunk lines the dispatcher's calls (offers, callbacks, caring calls) hold now."""
        async with self.sessions() as session:
            return await outbound_lines(session, self.now(), self.longest_call)

    @property
    def longest_call(self) -> timedelta:
        """How long an answered call may hold its trunk line should its hangup be missed
        (``[dial] max_call_s``, engine time)."""
        return timedelta(seconds=self.settings.dial.max_call_s)

    def now(self) -> datetime:
        """The engine clock's current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)
