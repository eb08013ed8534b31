"""Delivery of AMI events to the engine's handlers: by name pattern, isolated from failures."""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

from ivr.logmask import masked_logger

from .messages import AmiMessage

log = masked_logger("ivr.ami.events")

EventHandler = Callable[[AmiMessage], Awaitable[None] | None]


class EventRegistry:
    """Handlers by event-name pattern (fnmatch: ``Queue*``, ``*`` for all).

    A handler that raises, or whose coroutine raises, is logged and the link goes on; the
    coroutines still running are tracked so that ``cancel_handlers`` can end them.
    """

    def __init__(self) -> None:
        self._handlers: list[tuple[str, re.Pattern[str], EventHandler]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def register(self, pattern: str, handler: EventHandler) -> None:
        self._handlers.append((pattern, re.compile(fnmatch.translate(pattern)), handler))

    @property
    def patterns(self) -> frozenset[str]:
        """Every pattern some handler was registered for."""
        return frozenset(pattern for pattern, _, _ in self._handlers)

    def dispatch(self, event: AmiMessage) -> int:
        """Hand ``event`` to every matching handler; returns how many matched."""
        matched = 0
        for _, pattern, handler in list(self._handlers):
            if pattern.match(event.event) is None:
                continue
            matched += 1
            try:
                result = handler(event)
            except Exception:
                log.exception("AMI handler %r failed on %s event", handler, event.event)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._done)
        return matched

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("AMI async handler failed", exc_info=task.exception())

    async def cancel_handlers(self) -> None:
        """Cancel the handler coroutines still running and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
