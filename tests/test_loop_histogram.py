"""The AGI reply-time histogram counts without locks (``ivr/loop_histogram.py``) and is
exposed exactly as ``prometheus_client``'s own histogram would expose the same values."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from ivr.loop_histogram import LoopHistogram

BUCKETS = (0.001, 0.01, 0.1, 1, 10)
VALUES = {"STREAM FILE": [0.0005, 0.001, 0.0011, 0.5, 1.0, 99.0], "GET DATA": [0.01, 3.0]}


def _samples(registry: CollectorRegistry) -> list[str]:
    """The exposition's sample lines, without the ``_created`` timestamps that only the
    library's histogram carries."""
    return sorted(line for line in generate_latest(registry).decode().splitlines()
                  if line and not line.startswith("#") and "_created" not in line)


def test_the_exposition_is_the_library_histograms() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("t_seconds", "reply time", ["verb"], BUCKETS, ours)
    library = Histogram("t_seconds", "reply time", ["verb"], registry=theirs, buckets=BUCKETS)
    for verb, values in VALUES.items():
        for value in values:
            loop.labels(verb).observe(value)
            library.labels(verb).observe(value)
    assert _samples(ours) == _samples(theirs)
    assert 't_seconds_bucket{le="0.001",verb="STREAM FILE"} 2.0' in _samples(ours)
    assert 't_seconds_count{verb="STREAM FILE"} 6.0' in _samples(ours)


def test_labels_must_match_the_names() -> None:
    histogram = LoopHistogram("u_seconds", "reply time", ["verb"], BUCKETS, CollectorRegistry())
    with pytest.raises(ValueError, match="takes labels"):
        histogram.labels("STREAM FILE", "extra")
