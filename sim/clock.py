"""Simulated time on the Twisted reactor: S simulated seconds pass per real second.

All durations in the simulator (prompts, timeouts, ring times, party delays) are simulated
seconds; only the bounds that guard against a misbehaving engine (connect timeout, idle engine)
are real seconds, because they bound a real process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall


class SimClock:
    """Scaled clock. ``now()`` is a simulated epoch; ``elapsed()`` counts from the start."""

    def __init__(self, reactor: Any, speed: float = 1.0, origin: float | None = None) -> None:
        if not speed > 0:
            raise ValueError("speed must be a positive number")
        self.reactor = reactor
        self.speed = float(speed)
        self._real0 = reactor.seconds()
        self.origin = time.time() if origin is None else origin

    @property
    def real_start(self) -> float:
        """The wall time (epoch seconds) at which simulated time started: a stamp ``s`` was
        taken at ``real_start + s / speed``."""
        return self._real0

    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        return (self.reactor.seconds() - self._real0) * self.speed

    def now(self) -> float:
        """Simulated seconds since the epoch."""
        return self.origin + self.elapsed()

    def stamp(self) -> float:
        """Simulated seconds since the start, rounded for reports."""
        return round(self.elapsed(), 3)

    def call_later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> IDelayedCall:
        """Run ``fn`` after ``seconds`` of simulated time."""
        return self.reactor.callLater(max(0.0, seconds) / self.speed, fn, *args)

    def sleep(self, seconds: float) -> Deferred:
        """A Deferred that fires after ``seconds`` of simulated time."""
        d: Deferred = Deferred()
        call = self.call_later(seconds, d.callback, None)
        d.addErrback(lambda f: (call.active() and call.cancel(), f)[1])
        return d
