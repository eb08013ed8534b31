"""The engine's event loop: uvloop's. Its transports, timers and callbacks are written in C;
under a disaster burst the engine process is CPU-bound, and the standard loop's Python was a
large share of its time (README, "The disaster minute on uvloop")."""

from __future__ import annotations

import asyncio

import uvloop


def runner() -> asyncio.Runner:
    """An ``asyncio.Runner`` on a uvloop event loop."""
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def use_everywhere() -> None:
    """Every later ``asyncio.run`` in this process runs on uvloop (a benchmark's engine and
    its baselines alike, so they compare on the same loop)."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
