"""The engine clock: scaled time, and a clock set to another time of day (the demo's)."""

from __future__ import annotations

import time

from ivr.clock import ScaledClock


def test_a_clock_starting_at_a_time_reads_that_time_then_runs_scaled() -> None:
    start = time.time() + 8 * 3600
    before_first = time.monotonic()
    clock = ScaledClock.starting_at(start, speed=100.0)
    first = clock.now()
    after_first = time.monotonic()
    assert abs(first - start) <= (after_first - before_first) * 100 + 1e-6
    time.sleep(0.05)
    before_second = time.monotonic()
    second = clock.now()
    after_second = time.monotonic()
    # 100 clock seconds per wall second, bracketed by the wall readings around each read
    slack = 1e-6
    assert (before_second - after_first) * 100 - slack <= second - first
    assert second - first <= (after_second - before_first) * 100 + slack


def test_a_plain_clock_reads_wall_time_at_speed_one() -> None:
    clock = ScaledClock(1.0)
    assert abs(clock.now() - time.time()) < 0.5
