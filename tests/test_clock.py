"""The engine clock: scaled time, and a clock set to another time of day (the demo's)."""

from __future__ import annotations

import time

from ivr.clock import ScaledClock


def test_a_clock_starting_at_a_time_reads_that_time_then_runs_scaled() -> None:
    start = time.time() + 8 * 3600
    clock = ScaledClock.starting_at(start, speed=100.0)
    first = clock.now()
    assert abs(first - start) < 1.0
    time.sleep(0.05)
    advanced = clock.now() - first
    assert 4.0 <= advanced <= 30.0  # 0.05 s of wall time is 5 s at 100x (slack for a busy CPU)


def test_a_plain_clock_reads_wall_time_at_speed_one() -> None:
    clock = ScaledClock(1.0)
    assert abs(clock.now() - time.time()) < 0.5
