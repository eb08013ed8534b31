"""Time to a human: how long a caller on each path to the operators waits before the queue.

A product figure with goals. It is measured on the simulator's clock (simulated seconds, as
the caller lives them): from the answer, or from the key that asked for help, to the moment
the call joins the operator queue. ``hotline demo`` reports it per path and fails on a miss;
the wire tests measure the same way (``tests/test_time_to_human.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dispatch.stats import percentile


@dataclass(frozen=True, slots=True)
class Goal:
    """At most ``seconds`` from the answer (``since_key`` None) or from the caller's press of
    ``since_key`` to the queue; ``seconds`` None: reported without a goal."""

    seconds: float | None
    since_key: str | None = None

    def describe(self) -> str:
        if self.seconds is None:
            return "no goal"
        start = f"key {self.since_key}" if self.since_key else "answer"
        return f"goal {self.seconds:g} s from {start}"


GOALS: dict[str, Goal] = {
    "silence": Goal(45.0),
    "wrong_keys": Goal(45.0),
    "key_0": Goal(3.0, since_key="0"),
    "key_9": Goal(3.0, since_key="9"),
    "unknown_caller": Goal(15.0),
    "withheld_number": Goal(15.0),
    "no_menu_elder": Goal(5.0),
    "handset": Goal(5.0),
    "spoken_help": Goal(None),
}


class NotQueued(ValueError):
    """The call never reached the operator queue."""


def first_queue_join(result: dict[str, Any]) -> float | None:
    """When the call first joined a queue: the first Queue application it ran (a caller
    nobody answers moves on to the overflow queue, and the record's ``queue`` is then the
    overflow's)."""
    if not result.get("queue"):
        return None
    starts = [float(at) for at, app, *_ in result.get("apps", []) if app == "Queue"]
    return starts[0] if starts else float(result["queue"]["joined_at"])


def time_to_human(result: dict[str, Any], goal: Goal) -> float:
    """Simulated seconds from the goal's start (the answer, or the last press of its key
    before the queue) to the queue join, from a simulator call record."""
    joined = first_queue_join(result)
    if joined is None:
        raise NotQueued(f"call {result.get('uniqueid')} did not reach the operator queue")
    if goal.since_key is None:
        start = result.get("answered_at")
    else:
        presses = [at for at, digit in result.get("pressed", [])
                   if digit == goal.since_key and at <= joined]
        start = presses[-1] if presses else None
    if start is None:
        raise NotQueued(f"call {result.get('uniqueid')}: no start for {goal.describe()}")
    return round(joined - float(start), 3)


@dataclass
class PathTimes:
    """The measured times of one path, against its goal."""

    path: str
    goal: Goal
    seconds: list[float] = field(default_factory=list)
    not_queued: int = 0

    def add(self, result: dict[str, Any]) -> None:
        try:
            self.seconds.append(time_to_human(result, self.goal))
        except NotQueued:
            self.not_queued += 1

    @property
    def worst(self) -> float | None:
        return max(self.seconds) if self.seconds else None

    @property
    def missed(self) -> bool:
        """Over the goal, or a caller of this path who never reached the queue."""
        limit, worst = self.goal.seconds, self.worst
        return self.not_queued > 0 or (limit is not None and worst is not None
                                       and worst > limit)

    def row(self, judged: bool = True) -> str:
        if not self.seconds:
            figures = "no calls"
        else:
            figures = (f"p50 {percentile(self.seconds, 50):.1f} s, "
                       f"p95 {percentile(self.seconds, 95):.1f} s, max {self.worst:.1f} s "
                       f"({len(self.seconds)})")
        verdict = " MISSED" if judged and self.missed else ""
        lost = f", {self.not_queued} not queued" if self.not_queued else ""
        return f"{figures}{lost}; {self.goal.describe()}{verdict}"


def measure(calls: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, PathTimes]:
    """Times per path from (path, simulator call record) pairs, in the order of GOALS."""
    paths = {name: PathTimes(name, goal) for name, goal in GOALS.items()}
    for path, result in calls:
        paths[path].add(result)
    return paths
