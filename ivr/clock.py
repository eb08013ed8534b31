"""Clocks: wall time in production, scaled time when the simulator runs faster than life.

Every schedule in the engine asks a Clock for the time and for sleeps, so the same
code runs at real speed against Asterisk and at N-fold speed against the simulator.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    speed: float

    def now(self) -> float:
        """Seconds since the epoch, in this clock's time."""

    async def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` of this clock's time."""


class ScaledClock:
    """Time that runs ``speed`` times faster than the wall clock from a shared origin.

    speed=1.0 is plain wall time. Two processes given the same origin and speed agree.
    """

    def __init__(self, speed: float = 1.0, origin_wall: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
        self._origin_wall = time.time() if origin_wall is None else origin_wall
        self._origin_mono = time.monotonic() - (time.time() - self._origin_wall)

    offset_s: float = 0.0  # added to every reading: a clock set to another time of day

    @classmethod
    def starting_at(cls, start: float, speed: float = 1.0) -> ScaledClock:
        """A clock that reads ``start`` (epoch seconds) now and runs ``speed`` times faster."""
        clock = cls(speed)
        clock.offset_s = start - clock.now()
        return clock

    def now(self) -> float:
        elapsed = time.monotonic() - self._origin_mono
        return self._origin_wall + elapsed * self.speed + self.offset_s

    def to_real(self, seconds: float) -> float:
        """Wall seconds that ``seconds`` of clock time take."""
        return seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


SystemClock = ScaledClock
