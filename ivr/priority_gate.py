"""A gate a few holders may pass at once, with the waiting caller first.

Two gates in each engine process: SQLite's one writer (one slot: every write transaction
queues there, ``EngineContext.writing``), and the database pool (``ivr/admitted_sessions.py``:
as many slots as the pool keeps connections). A holder a caller on the line is waiting for
(the caller's identity, the screen pop, an emergency's order) is urgent: it goes before
every background holder already waiting (escalation steps, queue events, call records, the
dispatcher's plans and claims, caring calls, sweeps), so it waits at most for the holders
inside. Among equals the order is first come, first served. Nobody waiting ever times out.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from types import TracebackType


class PriorityGate:
    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError(f"a gate needs at least one slot, not {slots}")
        self.slots = slots
        self._inside = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """Holders waiting for a slot now."""
        return sum(1 for _rank, _seq, turn in self._waiting if not turn.done())

    def hold(self, urgent: bool = False) -> _Held:
        """A slot for the ``async with`` block; ``urgent`` goes before background holders
        waiting."""
        return _Held(self, urgent)

    async def _enter(self, urgent: bool) -> None:
        if self._inside < self.slots and not self._waiting:
            self._inside += 1
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if urgent else 1, next(self._order), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._pass_on()  # handed a slot as it was cancelled: hand it on
            raise

    def _pass_on(self) -> None:
        """Give the slot being left to the first waiter still waiting, or free it."""
        while self._waiting:
            _rank, _seq, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)  # the slot stays taken: it is theirs now
                return
        self._inside -= 1


class _Held:
    """``async with gate.hold(urgent)``: a class, not a generator, as every database session
    of the process passes one (cheaper to enter and leave)."""

    __slots__ = ("_gate", "_urgent")

    def __init__(self, gate: PriorityGate, urgent: bool) -> None:
        self._gate, self._urgent = gate, urgent

    async def __aenter__(self) -> None:
        await self._gate._enter(self._urgent)

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._gate._pass_on()
