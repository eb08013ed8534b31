"""SQLite's one writer, shared by one engine process, with the waiting caller first.

Every write transaction of the process queues here (``EngineContext.writing``). A write a
caller on the line is waiting for (an emergency's order before the caller goes to the
operators' queue) is urgent: it goes before every background write already waiting (the
dispatcher's plans and claims, caring calls, sweeps), so it waits at most for the one
transaction that holds the gate. Among equals the order is first come, first served.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator


class WriteGate:
    def __init__(self) -> None:
        self._held = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @contextlib.asynccontextmanager
    async def hold(self, urgent: bool = False) -> AsyncIterator[None]:
        """The gate for the block; ``urgent`` goes before background writes waiting."""
        if self._held or self._waiting:
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (0 if urgent else 1, next(self._order), turn))
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._pass_on()  # handed the gate as it was cancelled: hand it on
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        """Give the gate to the first waiter still waiting, or open it."""
        while self._waiting:
            _rank, _seq, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)  # the gate stays held: it is theirs now
                return
        self._held = False
