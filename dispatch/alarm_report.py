"""Alarm figures for a period: answer times against the telecare and hotline targets,
abandonment, dispositions and silent devices (``hotline report alarms``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.alarms import silent_devices
from dispatch.models import OrderEvent, QueueCall
from dispatch.open_alarms import CALLBACK_REASON
from dispatch.stats import percentile

EMERGENCY_PRIORITY = 10
TARGETS = ((15, None), (60, 97.5), (180, 99.0))  # seconds, required share (None: hotline 15 s)
DISPOSITIONS = ("real_emergency", "accidental", "test", "no_response")


@dataclass
class AnswerFigures:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    unanswered: int = 0
    waits: list[float] = field(default_factory=list)

    def within(self, seconds: float) -> float:
        """Share of offered calls answered within ``seconds`` (percent)."""
        if not self.offered:
            return float("nan")
        return 100.0 * sum(1 for wait in self.waits if wait <= seconds) / self.offered

    def percentile(self, q: int) -> float:
        return percentile(self.waits, q)


@dataclass
class AlarmReport:
    since: datetime
    until: datetime
    emergencies: AnswerFigures
    all_calls: AnswerFigures
    callbacks: AnswerFigures  # the engine's calls back to elders nobody had answered
    dispositions: Counter[str]
    silent: list[str]


def queue_wait_s(answered: datetime | None, joined: datetime | None,
                 queued: datetime | None) -> float | None:
    """Seconds from joining the queue (or, where not stamped, being queued) to an operator
    answering; None if nobody answered."""
    start = joined or queued
    if answered is None or start is None:
        return None
    return (answered - start).total_seconds()


def _figures(rows: list[QueueCall]) -> AnswerFigures:
    figures = AnswerFigures(offered=len(rows))
    for row in rows:
        wait = queue_wait_s(row.answered_at, row.joined_at, row.queued_at)
        if wait is not None:
            figures.answered += 1
            figures.waits.append(wait)
        elif row.abandoned_at is not None:
            figures.abandoned += 1
        else:
            figures.unanswered += 1
    return figures


async def queued_between(session: AsyncSession, since: datetime, until: datetime
                         ) -> list[QueueCall]:
    return list(await session.scalars(
        select(QueueCall).where(QueueCall.queued_at >= since, QueueCall.queued_at < until)
    ))


def answer_figures(queued: list[QueueCall]) -> tuple[AnswerFigures, AnswerFigures]:
    """(all calls made to us, emergencies among them): the engine's call-backs are its own
    calls, and the answer-time targets are for calls made to us."""
    rows = [r for r in queued if r.reason != CALLBACK_REASON]
    return (_figures(rows),
            _figures([r for r in rows if (r.priority or 0) >= EMERGENCY_PRIORITY]))


async def alarm_report(session: AsyncSession, since: datetime, until: datetime,
                       now: datetime) -> AlarmReport:
    queued = await queued_between(session, since, until)
    all_calls, emergencies = answer_figures(queued)
    closed = await session.scalars(
        select(OrderEvent.detail).where(OrderEvent.kind == "alarm_closed",
                                        OrderEvent.at >= since, OrderEvent.at < until)
    )
    silent = [f"{d.account} (elder {d.elder_id}, last report {d.last_test_at})"
              for d in await silent_devices(session, now)]
    return AlarmReport(
        since=since, until=until,
        emergencies=emergencies,
        all_calls=all_calls,
        callbacks=_figures([r for r in queued if r.reason == CALLBACK_REASON]),
        dispositions=Counter(str((detail or {}).get("disposition")) for detail in closed),
        silent=silent,
    )


def format_alarm_report(report: AlarmReport) -> str:
    lines = [f"Alarm report {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"]
    for title, figures in (("emergency calls", report.emergencies),
                           ("all calls to operators", report.all_calls),
                           ("emergency call-backs", report.callbacks)):
        lines.append(f"{title}: offered {figures.offered}, answered {figures.answered}, "
                     f"abandoned {figures.abandoned}, unanswered {figures.unanswered}")
        for seconds, target in TARGETS:
            goal = f"target {target} %" if target else "hotline standard"
            lines.append(f"  answered within {seconds:>3} s: {figures.within(seconds):6.1f} %"
                         f"  ({goal})")
        lines.append(f"  wait p50 {figures.percentile(50):.1f} s, p95 "
                     f"{figures.percentile(95):.1f} s")
    shown = ", ".join(f"{d} {report.dispositions.get(d, 0)}" for d in DISPOSITIONS)
    lines.append(f"dispositions: {shown}")
    lines.append(f"silent devices: {len(report.silent)}")
    lines.extend(f"  {line}" for line in report.silent)
    return "\n".join(lines)


def default_period(now: datetime) -> tuple[datetime, datetime]:
    """The last 30 days."""
    return now - timedelta(days=30), now
