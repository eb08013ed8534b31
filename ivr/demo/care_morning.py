"""The demo's morning of check-ins.

Elders the demo's other calls leave alone get a daily check-in whose window opens with the
demo's day. Their phones, in the simulator, answer and press 1 (well) or 2 (help), answer
and hang up, or never answer: those are called three times, then their family, and their
welfare check goes to the top of the operators' worklist. The summary is the day's care
report; an unreached elder whose welfare check is not on the worklist fails the demo.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import insert, select

from dispatch.care_report import CareReport, care_report, format_care_report
from dispatch.demo_state import care_rounds_going, owners_of
from dispatch.models import CareKind, CarePlan, Elder
from dispatch.phones import national, normalize
from dispatch.quality import callback_number
from dispatch.worklist import AWAITING_DISPOSITION, UNATTENDED, worklist
from ivr.context import EngineContext
from ivr.demo.simproc import SimulatorProcess

CHECK_INS = 40
WINDOW = (time(9, 0), time(11, 0))  # local: opens with the demo's day (lifecycle.DAY_STARTS)
RING_S = 6.0
PHONES: dict[str, dict[str, Any]] = {
    "well": {"answer": "answer", "ring_s": RING_S, "hangup_after": None,
             "script": [{"press": "1", "delay": 3.0}]},
    "help": {"answer": "answer", "ring_s": RING_S, "hangup_after": None,
             "script": [{"press": "2", "delay": 3.0}]},
    "hangs_up": {"answer": "answer", "ring_s": RING_S, "script": [{"hangup": True,
                                                                   "delay": 2.0}]},
    "no_answer": {"answer": "noanswer"},
}
EMERGENCY_SECTIONS = (UNATTENDED, AWAITING_DISPOSITION)  # nobody on it yet; answered, open
MIX = (("well", 55), ("help", 10), ("hangs_up", 15), ("no_answer", 20))


@dataclass
class CareOutcome:
    """The morning's care report and what the demo checks of it."""

    report: CareReport
    behaviours: dict[str, int]
    not_on_worklist: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """A check-in planned but never due, one still open, or a welfare check missing."""
        still_open = self.report.by_state["due"] + self.report.by_state["calling"]
        planned = sum(self.behaviours.values())
        return bool(self.not_on_worklist) or still_open > 0 or self.report.due < planned


@dataclass
class CareMorning:
    ctx: EngineContext
    sim: SimulatorProcess
    seed: int
    behaviour_of: dict[int, str] = field(default_factory=dict)  # elder id -> PHONES key

    async def prepare(self, callers: Collection[str], count: int = CHECK_INS) -> int:
        """Plan check-ins for up to ``count`` elders the demo's calls leave alone: none who
        calls in (``callers``, as dialled) nor one sharing a number with such a caller
        (their rating call-backs ring those numbers); give their phones their behaviour.
        Returns how many."""
        rng = random.Random(self.seed * 7 + 1)
        area = self.ctx.settings.ivr.local_area_code
        dialled = {e164 for e164 in (normalize(n, area) for n in callers) if e164}
        async with self.ctx.sessions() as session:
            busy = dialled | {number for number in [
                await callback_number(session, elder_id)
                for elder_id in await owners_of(session, dialled)] if number}
            ids = list(await session.scalars(select(Elder.id).order_by(Elder.id)))
            rng.shuffle(ids)
            phones: dict[str, dict[str, Any]] = {}
            for elder_id in ids:
                if len(self.behaviour_of) == count:
                    break
                number = await callback_number(session, elder_id)
                if number is None or number in busy:
                    continue
                busy.add(number)
                kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
                self.behaviour_of[elder_id] = kind
                phones[national(number)] = PHONES[kind]
        if not self.behaviour_of:
            return 0
        await self.sim.request("phones", phones=phones)  # before any call can ring
        async with self.ctx.writing() as session:
            await session.execute(insert(CarePlan), [
                {"elder_id": elder_id, "kind": CareKind.CHECK_IN, "window_start": WINDOW[0],
                 "window_end": WINDOW[1], "weekdays": 127, "created_at": datetime.now(UTC)}
                for elder_id in self.behaviour_of])
            await session.commit()
        return len(self.behaviour_of)

    async def settled(self) -> bool:
        """Every round ended, and every escalated one has its welfare check open."""
        async with self.ctx.sessions() as session:
            return await care_rounds_going(session) == 0

    async def outcome(self, day: date, trunk_channels: int) -> CareOutcome:
        """The day's report, and the escalated elders whose welfare check is not an open
        emergency on the operators' worklist (nobody on it yet, or answered by an operator
        on its call-back and awaiting a disposition)."""
        now = self.ctx.now()
        async with self.ctx.sessions() as session:
            report = await care_report(session, day, trunk_channels)
            items = await worklist(session, now, 600.0, 86_400.0)
        on_list = {item.order_no for item in items if item.section in EMERGENCY_SECTIONS}
        behaviours: dict[str, int] = {}
        for kind in self.behaviour_of.values():
            behaviours[kind] = behaviours.get(kind, 0) + 1
        missing = [f"round {e.round_id} (elder {e.elder_id}): "
                   f"{e.order_no or 'no welfare check'}"
                   for e in report.escalations if e.order_no not in on_list]
        return CareOutcome(report=report, behaviours=behaviours, not_on_worklist=missing)


def print_care(outcome: CareOutcome) -> None:
    said = ", ".join(f"{kind.replace('_', ' ')} {n}"
                     for kind, n in sorted(outcome.behaviours.items()))
    print(f"\nMorning check-ins: {sum(outcome.behaviours.values())} elders ({said})")
    print(format_care_report(outcome.report))
    for line in outcome.not_on_worklist:
        print(f"  NOT ON THE WORKLIST: {line}")
    if outcome.failed:
        print("RESULT: a check-in was not made or did not end, or an unreached elder's "
              "welfare check is not on the worklist")
    else:
        print("RESULT: every check-in ended; every unreached elder is on the worklist")
