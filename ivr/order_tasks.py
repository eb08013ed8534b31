"""At most one task per order in this process, all cancelled when the engine stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

CANCEL_AGAIN_S = 2.0


class OrderTasks:
    """Background work keyed by order id: a second start while one runs is ignored. Work
    that fails is logged when it ends, naming the order (nobody else awaits these tasks)."""

    def __init__(self, name: str = "background work") -> None:
        self.name = name
        self._tasks: dict[int, asyncio.Task[Any]] = {}
        self._closed = False

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._tasks

    def start(self, order_id: int, work: Callable[[], Coroutine[Any, Any, Any]]) -> bool:
        """Run ``work()`` for ``order_id`` unless its task still runs, or the work is closed
        (the process stops: another one takes the order up); True if started."""
        if order_id in self._tasks or self._closed:
            return False
        task = asyncio.create_task(work())
        self._tasks[order_id] = task
        task.add_done_callback(lambda done: self._finished(order_id, done))
        return True

    def _finished(self, order_id: int, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(order_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("%s of order %s failed: %s", self.name, order_id, exc, exc_info=exc)

    async def close(self, again_after_s: float = CANCEL_AGAIN_S) -> None:
        """Start nothing more, cancel every task and wait for them to end. A task still
        running ``again_after_s`` after its cancel (the cancel was lost inside a library) is
        cancelled again, until none is left."""
        self._closed = True
        while self._tasks:
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=again_after_s)
