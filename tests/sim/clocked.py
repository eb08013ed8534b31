"""The simulator in-process on Twisted's deterministic ``task.Clock``, driven through the same
control operations as ``python -m sim serve`` (sim/control.py), for tests of pure simulator
logic: ring times, queue timeouts and priorities, hold music. Simulated time moves only when
the test advances it, so durations come out exact and the machine's load does not matter.
Tests that need real TCP (AGI, AMI) use tests/simharness.py instead."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from sim.clock import SimClock
from sim.control import ControlService
from sim.dialplan.parser import load
from sim.pbx import Pbx
from sim.sounds import SoundLibrary

ORIGIN = 1795346825.0  # the simulated epoch at the start
STEP_S = 0.01
LIMIT_S = 3600.0


def run_until(reactor: Clock, *pending: Deferred) -> list[Any]:
    """Advance simulated time until every Deferred has fired; their results, in order (a
    failure is raised). Fails if that takes more than an hour of simulated time."""
    out: list[list[Any]] = [[] for _ in pending]
    for box, d in zip(out, pending, strict=True):
        d.addBoth(box.append)
    waited = 0.0
    while not all(out):
        if waited > LIMIT_S:
            raise AssertionError(f"still waiting after {LIMIT_S:g} simulated seconds")
        reactor.advance(STEP_S)
        waited += STEP_S
    results = [box[0] for box in out]
    for result in results:
        if isinstance(result, Failure):
            result.raiseException()
    return results


class ClockedSim:
    """A PBX on a task.Clock with the control protocol's operations."""

    def __init__(self, dialplans: list[Path], sounds: Path,
                 globals_: Mapping[str, str] | None = None) -> None:
        self.reactor = Clock()
        self.pbx = Pbx(self.reactor, SimClock(self.reactor, 1.0, origin=ORIGIN),
                       load(dialplans), SoundLibrary(sounds),
                       global_overrides=dict(globals_ or {}))
        self.control = ControlService(self.pbx, stop=lambda: None)

    def start(self, op: str, **fields: Any) -> Deferred:
        """Begin one control operation; its result (as JSON gives it) when it fires."""
        d = maybeDeferred(self.control.handle, {"op": op, **fields})
        return d.addCallback(lambda result: json.loads(json.dumps(result)))

    def request(self, op: str, **fields: Any) -> Any:
        """Run one control operation to its end."""
        [result] = run_until(self.reactor, self.start(op, **fields))
        return result

    def calls(self, *requests: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Place calls together (each ``{"caller": ..., "delay": ...}``); their results."""
        return run_until(self.reactor, *(self.start("call", **r) for r in requests))
