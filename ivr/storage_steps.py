"""One storage step of the engine's background work: done, or logged and reported as not.

Calls, escalations and dispatch must go on when the database fails for a moment: the step
that failed is logged with what it was about, and the caller decides (retry on the next
sweep, route to a human, carry on). This is the one place that decides which errors are
storage errors, so no caller catches them on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from ivr.metrics import STORAGE_ERRORS as STORAGE_ERROR_COUNT

T = TypeVar("T")

# Pauses between the tries of a write that must be stored (then every last one).
RETRY_DELAYS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)

# OSError: the database or its socket went away (TimeoutError, a lock wait ran out, is one).
STORAGE_ERRORS = (SQLAlchemyError, OSError)


@dataclass(frozen=True, slots=True)
class Step(Generic[T]):
    """The outcome of a storage step: ``ok`` and its ``value``, or not ok."""

    ok: bool
    value: T | None = None


async def storage_step(
    session: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    work: Callable[[AsyncSession], Awaitable[T]],
    log: logging.Logger,
    failure: str,
    *args: object,
    level: int = logging.ERROR,
) -> Step[T]:
    """Run ``work`` in a session from ``session`` (``ctx.writing`` or ``ctx.sessions``).

    A storage error is logged at ``level`` as ``failure % args`` followed by what went wrong
    (never the statement's parameters: they hold personal data), and returns a Step that is
    not ok; any other exception propagates.
    """
    try:
        async with session() as opened:
            return Step(True, await work(opened))
    except STORAGE_ERRORS as exc:
        STORAGE_ERROR_COUNT.labels("database").inc()
        log.log(level, f"{failure}: %s", *args, describe(exc))
        return Step(False)


def describe(exc: BaseException) -> str:
    """A storage error in one line, without the SQL parameters or the server's DETAIL (they
    may quote phone numbers and names)."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


async def stored_with_retries(
    session: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    work: Callable[[AsyncSession], Awaitable[T]],
    log: logging.Logger,
    failure: str,
    *args: object,
    give_up: Callable[[], bool],
    before_retry: Callable[[], Awaitable[object]] | None = None,
) -> Step[T]:
    """``storage_step`` tried again after ``retry_delay`` pauses until it is stored, or until
    ``give_up()`` says so after a refused try (then a Step that is not ok). ``failure`` is
    logged with ``*args`` and the try's number, as a WARNING: the write is not lost, it is
    tried again, and the caller says what it does if it gives up. ``before_retry`` is
    awaited after each pause, before the try it precedes."""
    for attempt in itertools.count():
        step = await storage_step(session, work, log, failure, *args, attempt + 1,
                                  level=logging.WARNING)
        if step.ok or give_up():
            return step
        await asyncio.sleep(retry_delay(attempt))
        if before_retry is not None:
            await before_retry()
    raise AssertionError("unreachable")


def retry_delay(attempt: int) -> float:
    """The pause after the ``attempt``-th (from 0) refused try of a write that must be stored."""
    return RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
