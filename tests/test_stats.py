"""Percentiles as every report and benchmark computes them."""

from __future__ import annotations

import math

from dispatch.stats import percentile


def test_percentiles_of_many_one_and_no_values() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.5
    assert percentile(values, 99) == 99.01
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))
