"""The engine's event loop: uvloop's. Its transports, timers and callbacks are written in C,
which cut the engine's CPU time per emergency call by about a fifth in the disaster-burst
benchmark, and with it the time callers wait for a busy engine."""

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
