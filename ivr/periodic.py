"""The engine's background loops: one step, a pause, again, for as long as the engine runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ivr.storage_steps import STORAGE_ERRORS, describe

log = logging.getLogger(__name__)


async def repeat(step: Callable[[], Awaitable[object]], pause: Callable[[], Awaitable[None]],
                 what: str) -> None:
    """Run ``step`` then ``pause`` forever. A failing step is logged and tried again after the
    pause; a cancellation always ends the loop, also when a database driver reported it as an
    error of its own (the loop would otherwise outlive the engine and hang its shutdown)."""
    while True:
        try:
            await step()
        except Exception as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from exc
            if isinstance(exc, STORAGE_ERRORS):  # the database is down: nothing to trace
                log.warning("%s failed; retrying later: %s", what, describe(exc))
            else:
                log.exception("%s failed; retrying later", what)
        await pause()
