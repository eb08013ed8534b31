"""Micro-batching: requests made while a batch runs are served together by the next one.

A burst of a thousand orders would otherwise be a thousand planning transactions (and a
thousand claims, each under the claim lock): one at a time, each waits for all the others.
Gathered, a thousand requests are a handful of transactions of a few queries each. A lone
request is served at once, alone: batching adds no wait when there is no burst.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = TypeVar("P")
T = TypeVar("T")


class MicroBatch(Generic[K, V]):
    """Serves ``submit(key)`` through ``run(keys)``, one batch of at most ``most`` keys at a
    time. ``run`` answers every key it was given; a key submitted again while it waits gets
    ``repeat`` (the first request does the work). An error of ``run`` is every waiter's.
    With ``abandon``, a batch whose every waiter is cut off while it runs is cancelled (a
    statement nobody waits for any more is not left to commit), and a waiter cut off while
    its batch runs returns only once the batch has ended, one way or the other (so it never
    goes on while its work may still be done behind its back)."""

    def __init__(self, run: Callable[[list[K]], Awaitable[dict[K, V]]], most: int,
                 repeat: V, abandon: bool = False) -> None:
        self._run = run
        self._most = most
        self._repeat = repeat
        self._abandon = abandon
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._running: tuple[asyncio.Future[dict[K, V]], set[K]] | None = None

    async def submit(self, key: K) -> V:
        try:
            return await self.request(key)
        except asyncio.CancelledError:
            running = self._running
            if running is not None and key in running[1]:
                await asyncio.wait([running[0]])
            raise

    def request(self, key: K) -> asyncio.Future[V]:
        """``submit`` without waiting: the future of ``key``'s answer."""
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        waiters = self._waiting.setdefault(key, [])
        waiters.append(future)
        if len(waiters) > 1:
            future.set_result(self._repeat)
        if self._runner is None:
            self._runner = asyncio.create_task(self._drain(), name="micro batch")
        return future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[:self._most]
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    results = await self._run_batch(keys, [f[0] for f in batch.values()])
                except BaseException as exc:
                    for futures in batch.values():
                        _settle(futures[0], exc=exc)
                    if isinstance(exc, asyncio.CancelledError) and _being_cancelled():
                        raise
                    continue
                for key, futures in batch.items():
                    _settle(futures[0], results[key])
        finally:
            self._runner = None

    async def _run_batch(self, keys: list[K], waiters: list[asyncio.Future[V]]
                         ) -> dict[K, V]:
        if not self._abandon:
            return await self._run(keys)
        run = asyncio.ensure_future(self._run(keys))
        self._running = (run, set(keys))
        try:
            return await _unless_abandoned(run, waiters)
        finally:
            self._running = None

    async def close(self) -> None:
        """Cancel the batch running; every request waiting fails with CancelledError."""
        runner = self._runner
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        for futures in self._waiting.values():
            futures[0].cancel()
        self._waiting.clear()


async def _unless_abandoned(run: asyncio.Future[T], waiters: list[asyncio.Future[Any]]) -> T:
    """``run``'s outcome; it is cancelled once every one of ``waiters`` is."""
    def abandon_if_unwanted(_waiter: asyncio.Future[Any]) -> None:
        if all(waiter.cancelled() for waiter in waiters):
            run.cancel()

    for waiter in waiters:
        waiter.add_done_callback(abandon_if_unwanted)
    return await run


def _being_cancelled() -> bool:
    """The current task itself is being cancelled (not a batch it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _settle(future: asyncio.Future[V], result: V | None = None,
            exc: BaseException | None = None) -> None:
    if future.done():  # its waiter was cancelled
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    elif exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]


class PayloadBatch(Generic[P, V]):
    """Serves ``submit(payload)`` through ``run(payloads)``, which answers each payload in
    order; the payloads submitted while a batch runs go together in the next one (at most
    ``most``). A request cut off before its batch went is left out of it; ``abandon`` as
    for MicroBatch. Its own queue, not a MicroBatch's keyed one: every payload is its own
    request, and the call path submits six a call."""

    def __init__(self, run: Callable[[list[P]], Awaitable[list[V]]], most: int,
                 abandon: bool = False) -> None:
        self._run = run
        self._most = most
        self._abandon = abandon
        self._queue: collections.deque[tuple[P, asyncio.Future[V]]] = collections.deque()
        self._runner: asyncio.Task[None] | None = None
        self._running: tuple[asyncio.Future[list[V]], list[asyncio.Future[V]]] | None = None

    async def submit(self, payload: P) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._queue.append((payload, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._drain(), name="micro batch")
        try:
            return await future
        except asyncio.CancelledError:
            running = self._running
            if running is not None and future in running[1]:
                await asyncio.wait([running[0]])
            raise

    async def _drain(self) -> None:
        queue = self._queue
        try:
            while queue:
                payloads: list[P] = []
                waiters: list[asyncio.Future[V]] = []
                while queue and len(waiters) < self._most:
                    payload, future = queue.popleft()
                    if not future.done():  # else cut off before its batch went
                        payloads.append(payload)
                        waiters.append(future)
                if not waiters:
                    continue
                try:
                    answers = await self._run_batch(payloads, waiters)
                except BaseException as exc:
                    for future in waiters:
                        _settle(future, exc=exc)
                    if isinstance(exc, asyncio.CancelledError) and _being_cancelled():
                        raise
                    continue
                for future, answer in zip(waiters, answers, strict=True):
                    _settle(future, answer)
        finally:
            self._runner = None

    async def _run_batch(self, payloads: list[P], waiters: list[asyncio.Future[V]]
                         ) -> list[V]:
        if not self._abandon:
            return await self._run(payloads)
        run = asyncio.ensure_future(self._run(payloads))
        self._running = (run, waiters)
        try:
            return await _unless_abandoned(run, waiters)
        finally:
            self._running = None

    async def close(self) -> None:
        """Cancel the batch running; every request waiting fails with CancelledError."""
        runner = self._runner
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        for _payload, future in self._queue:
            future.cancel()
        self._queue.clear()
