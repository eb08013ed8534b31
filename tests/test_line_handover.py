"""The promise of an answered call's line to the caring call that waits for it (pure
bookkeeping; the claim that stores the hangup is in tests/test_outbound_lines.py)."""

from __future__ import annotations

from ivr.line_handover import LineHandovers


def test_a_line_is_promised_only_while_its_call_is_up() -> None:
    lines = LineHandovers()
    lines.answered(7)
    assert lines.holding(7)
    assert lines.promise(7, 8)
    assert not lines.holding(7)  # promised: a second plan would waste a round
    assert lines.hung_up(7) == 8
    assert lines.hung_up(7) is None  # handed over once
    assert not lines.promise(7, 9)  # hung up before the plan was ready: dial it yourself


def test_a_call_hung_up_with_nothing_promised_frees_its_line_the_ordinary_way() -> None:
    lines = LineHandovers()
    lines.answered(1)
    assert lines.hung_up(1) is None
    assert lines.hung_up(2) is None  # never seen answered (another engine's call)
    assert not lines.holding(2)


def test_the_oldest_answered_calls_are_forgotten_beyond_the_limit() -> None:
    lines = LineHandovers(limit=2)
    for attempt in (1, 2, 3):
        lines.answered(attempt)
    assert not lines.holding(1) and lines.holding(2) and lines.holding(3)
    assert not lines.promise(1, 10)
