"""Small statistics shared by reports, the demo summary and the benchmarks."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: int) -> float:
    """The ``q``-th percentile (1-99, inclusive method); NaN without values."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def most_at_once(spans: Sequence[tuple[Any, Any]]) -> int:
    """The largest number of (start, end) spans open at one instant (an end and a start at
    the same instant do not overlap)."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans],
                   key=lambda edge: (edge[0], edge[1]))
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak
