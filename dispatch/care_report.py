"""The day's caring calls, for ``hotline report care --date``: who was due, reached and
well, asked for help, went to an operator, was not reached and escalated (with how each
welfare check ended), the calls placed per elder, and how busy the trunk was."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.care_calls import requested_by
from dispatch.escalations import FINISHED
from dispatch.models import CallPurpose, CareRound, OrderEvent, OutboundCall, WorkOrder


@dataclass(frozen=True)
class Escalation:
    """One elder nobody reached, and how the welfare check went."""

    round_id: int
    elder_id: int
    order_no: str | None  # None: the welfare check is not open yet
    order_status: str | None
    family: str | None  # family_acknowledged, family_unreached, family_none, or still going


@dataclass
class CareReport:
    day: date
    by_state: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    escalations: list[Escalation] = field(default_factory=list)
    calls: int = 0
    elders_called: int = 0
    most_calls: int = 0
    busy_channel_s: float = 0.0
    span_s: float = 0.0
    trunk_channels: int = 0

    @property
    def due(self) -> int:
        return sum(n for state, n in self.by_state.items() if state != "skipped")

    @property
    def utilisation(self) -> float | None:
        """Busy channel-seconds over the trunk's channel-seconds while calls ran."""
        capacity = self.trunk_channels * self.span_s
        return self.busy_channel_s / capacity if capacity > 0 else None


async def care_report(session: AsyncSession, day: date, trunk_channels: int) -> CareReport:
    report = CareReport(day=day, trunk_channels=trunk_channels)
    rounds = (await session.execute(
        select(CareRound.id, CareRound.elder_id, CareRound.kind, CareRound.state)
        .where(CareRound.day == day))).all()
    for _id, _elder, kind, state in rounds:
        report.by_state[state.value] += 1
        report.by_kind[kind.value] += 1
    ids = [row.id for row in rounds]
    calls = (await session.execute(
        select(OutboundCall.round_id, OutboundCall.claimed_at, OutboundCall.finished_at)
        .where(OutboundCall.purpose == CallPurpose.CARE_CALL,
               OutboundCall.round_id.in_(ids), OutboundCall.claimed_at.is_not(None)))).all()
    per_elder: Counter[int] = Counter()
    elder_of = {row.id: row.elder_id for row in rounds}
    starts: list[datetime] = []
    ends: list[datetime] = []
    for round_id, claimed_at, finished_at in calls:
        per_elder[elder_of[round_id]] += 1
        if finished_at is not None:
            report.busy_channel_s += max(0.0, (finished_at - claimed_at).total_seconds())
            starts.append(claimed_at)
            ends.append(finished_at)
    report.calls = sum(per_elder.values())
    report.elders_called = len(per_elder)
    report.most_calls = max(per_elder.values(), default=0)
    if starts:
        report.span_s = (max(ends) - min(starts)).total_seconds()
    escalated = [row for row in rounds if row.state.value == "escalated"]
    keys = {requested_by(row.id): row for row in escalated}
    orders = {key: (order_id, order_no, status) for key, order_id, order_no, status in (
        await session.execute(
            select(WorkOrder.requested_by, WorkOrder.id, WorkOrder.order_no, WorkOrder.status)
            .where(WorkOrder.requested_by.in_(list(keys))))).all()}
    finished = dict((await session.execute(
        select(OrderEvent.order_id, func.max(OrderEvent.kind))
        .where(OrderEvent.order_id.in_([o[0] for o in orders.values()]),
               OrderEvent.kind.in_(FINISHED))
        .group_by(OrderEvent.order_id))).all())
    for key, row in keys.items():
        order_id, order_no, status = orders.get(key, (None, None, None))
        report.escalations.append(Escalation(
            round_id=row.id, elder_id=row.elder_id, order_no=order_no,
            order_status=getattr(status, "value", status),
            family=finished.get(order_id) if order_id is not None else None))
    return report


def format_care_report(report: CareReport) -> str:
    states = report.by_state
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.by_kind.items()))
    lines = [f"Caring calls of {report.day}",
             f"  due: {report.due} ({kinds or 'none'})",
             f"  reached and well: {states['well']}",
             f"  asked for help (call-back item): {states['help']}",
             f"  put through to an operator: {states['operator']}",
             f"  reached otherwise (called 12349 meanwhile): {states['reached']}",
             f"  check-ins not reached, escalated: {states['escalated']}",
             f"  other calls not reached: {states['unreached']}",
             f"  still open: {states['due'] + states['calling']}",
             f"  skipped (quiet days): {states['skipped']}",
             f"  calls placed: {report.calls} to {report.elders_called} elders "
             f"(at most {report.most_calls} to one)"]
    utilisation = report.utilisation
    lines.append("  channel utilisation: " + (
        f"{100 * utilisation:.1f} % of {report.trunk_channels} channels over "
        f"{report.span_s / 60:.1f} min" if utilisation is not None else "no calls"))
    for item in report.escalations:
        lines.append(f"  escalated: round {item.round_id}, elder {item.elder_id}: welfare "
                     f"check {item.order_no or 'not open yet'}"
                     f"{f' ({item.order_status})' if item.order_status else ''}, family: "
                     f"{item.family or 'being called'}")
    return "\n".join(lines)
