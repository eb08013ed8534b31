"""The hotline's figures rolled up by region and period (``hotline report stats``).

Rows are the regions of one level (county, city or province) inside an area (an account's
region, or the whole platform); every figure belongs to the region of the elder it is
about, read from the registry in the query (``Elder.<level>_code``). A call from a number
nobody is registered under belongs to no region: it is counted in the row ``unknown`` of a
report over every region (and in none of an area's).

Per region, over ``[since, until)``:

* calls: inbound calls started; calls put to the operators (the queue, the engine's own
  emergency call-backs left out), answered within 15 s (the hotline standard), abandoned;
* orders created, per service;
* dispatch: orders offered to vendors, accepted; arrivals due (an accepted order's
  ``arrive_deadline`` in the period), on time; ratings given (orders completed in the
  period) and their mean; complaints opened;
* alarms: emergency orders opened; emergency calls to the operators answered within 60 s
  and 180 s (the telecare targets, 97.5 % and 99 %); alarms closed, per disposition;
* caring calls: rounds due, the elder reached (well, help, operator or reached otherwise),
  escalated to a welfare check.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.alarm_report import DISPOSITIONS, EMERGENCY_PRIORITY, queue_wait_s
from dispatch.models import (
    Call,
    CallPurpose,
    CareRound,
    Complaint,
    Elder,
    OrderEvent,
    OutboundCall,
    QueueCall,
    RoundState,
    ServiceType,
    WorkOrder,
)
from dispatch.open_alarms import CALLBACK_REASON
from dispatch.regions import RegionLevel, RegionScope, region_column

UNKNOWN = "unknown"  # the row of calls from numbers nobody is registered under
HOTLINE_ANSWER_S = 15
ALARM_TARGETS_S = (60, 180)
REACHED = (RoundState.WELL, RoundState.HELP, RoundState.OPERATOR, RoundState.REACHED)
SERVICES = tuple(service.value for service in ServiceType)

COLUMNS: tuple[str, ...] = (
    "region", "calls", "to_operators", "answered_15s", "abandoned",
    *(f"orders_{service}" for service in SERVICES),
    "offered", "accepted", "arrivals_due", "on_time", "ratings", "rating_mean",
    "complaints", "alarms", "alarm_calls", "answered_60s", "answered_180s",
    *(f"closed_{disposition}" for disposition in DISPOSITIONS),
    "care_due", "care_reached", "care_escalated",
)


@dataclass
class RegionRow:
    """One region's figures; ``values`` by column name (counts, and ``rating_mean``)."""

    region: str
    values: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def orders(self) -> int:
        """Orders created, every service."""
        return int(sum(self.values.get(f"orders_{service}", 0) for service in SERVICES))

    def cells(self) -> list[object]:
        row: list[object] = [self.region]
        for column in COLUMNS[1:]:
            value = self.values.get(column, 0)
            row.append(round(value, 2) if column == "rating_mean" else int(value))
        return row


@dataclass(frozen=True)
class RegionStats:
    level: RegionLevel
    area: RegionScope | None  # None: the whole platform
    since: datetime
    until: datetime
    rows: list[RegionRow]

    def total(self) -> RegionRow:
        """The sums of the rows (``rating_mean`` weighted by the ratings)."""
        total = RegionRow("total")
        for row in self.rows:
            for column, value in row.values.items():
                if column != "rating_mean":
                    total.values[column] += value
        ratings = total.values.get("ratings", 0)
        if ratings:
            total.values["rating_mean"] = sum(
                row.values.get("rating_mean", 0) * row.values.get("ratings", 0)
                for row in self.rows) / ratings
        return total


def region_level(code: str) -> RegionLevel:
    """The level of a six-digit division code: ``XX0000`` a province, ``XXXX00`` a city,
    anything else a county (GB/T 2260)."""
    if len(code) != 6 or not code.isdigit():
        raise ValueError(f"region code must be six digits, not {code!r}")
    if code.endswith("0000"):
        return RegionLevel.PROVINCE
    return RegionLevel.CITY if code.endswith("00") else RegionLevel.COUNTY


def area_of(text: str) -> RegionScope:
    """``620000`` or ``province:620000``: the area a report covers."""
    if ":" in text:
        return RegionScope.parse(text)
    return RegionScope(region_level(text.strip()), text.strip())


def _between(column: Any, since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(column >= since, column < until)


class _Rollup:
    """Counts grouped by the elder's region at ``level``, inside ``area``."""

    def __init__(self, session: AsyncSession, level: RegionLevel, area: RegionScope | None
                 ) -> None:
        if area is not None and level.rank > area.level.rank:
            raise ValueError(f"a {area.level.value} has no {level.value} rows above it")
        self.session = session
        self.region = region_column(level)
        self.area = area
        self.rows: dict[str, RegionRow] = {}

    def row(self, region: str | None) -> RegionRow:
        key = region or UNKNOWN
        return self.rows.setdefault(key, RegionRow(key))

    def inside(self, statement: Select[Any]) -> Select[Any]:
        """``statement`` kept to the area's elders (a call with no elder is in no area)."""
        return statement if self.area is None else statement.where(self.area.elder_condition())

    async def add(self, column: str, statement: Select[Any]) -> None:
        """Add up ``statement``'s (region, value) rows, grouped by region, under
        ``column``."""
        for region, value in (await self.session.execute(self.inside(statement))).all():
            if value:
                self.row(region).values[column] += float(value)


async def region_stats(session: AsyncSession, level: RegionLevel, area: RegionScope | None,
                       since: datetime, until: datetime) -> RegionStats:
    """The figures of every region of ``level`` inside ``area`` (everywhere if None)."""
    rollup = _Rollup(session, level, area)
    region = rollup.region
    by_elder = Elder.id

    def counted(*where: Any, value: Any = None) -> Select[Any]:
        return select(region, value if value is not None else func.count()).where(*where)

    # calls
    await rollup.add("calls", counted(Call.direction == "inbound",
                                      _between(Call.started_at, since, until))
                     .select_from(Call).outerjoin(Elder, Call.elder_id == by_elder)
                     .group_by(region))
    queued = (select(region, QueueCall.answered_at, QueueCall.joined_at, QueueCall.queued_at,
                     QueueCall.abandoned_at, QueueCall.priority)
              .select_from(QueueCall)
              .outerjoin(Call, Call.uniqueid == QueueCall.uniqueid)
              .outerjoin(Elder, Call.elder_id == by_elder)
              .where(_between(QueueCall.queued_at, since, until),
                     func.coalesce(QueueCall.reason, "") != CALLBACK_REASON))
    for code, answered, joined, queued_at, abandoned, priority in \
            (await session.execute(rollup.inside(queued))).all():
        row = rollup.row(code)
        row.values["to_operators"] += 1
        wait = queue_wait_s(answered, joined, queued_at)
        row.values["answered_15s"] += wait is not None and wait <= HOTLINE_ANSWER_S
        row.values["abandoned"] += abandoned is not None and answered is None
        if (priority or 0) >= EMERGENCY_PRIORITY:
            row.values["alarm_calls"] += 1
            for target in ALARM_TARGETS_S:
                row.values[f"answered_{target}s"] += wait is not None and wait <= target

    # orders
    orders = (select(region, WorkOrder.service, func.count()).select_from(WorkOrder)
              .join(Elder, WorkOrder.elder_id == by_elder)
              .where(_between(WorkOrder.created_at, since, until))
              .group_by(region, WorkOrder.service))
    for code, service, count in (await session.execute(rollup.inside(orders))).all():
        value = getattr(service, "value", service)
        rollup.row(code).values[f"orders_{value}"] += count
        if value == ServiceType.EMERGENCY.value:
            rollup.row(code).values["alarms"] += count

    def of_orders(*where: Any, value: Any = None) -> Select[Any]:
        return (counted(*where, value=value).select_from(WorkOrder)
                .join(Elder, WorkOrder.elder_id == by_elder).group_by(region))

    offered = select(OutboundCall.order_id).where(
        OutboundCall.purpose == CallPurpose.VENDOR_OFFER)
    await rollup.add("offered", of_orders(_between(WorkOrder.created_at, since, until),
                                          WorkOrder.id.in_(offered)))
    await rollup.add("accepted", of_orders(_between(WorkOrder.created_at, since, until),
                                           WorkOrder.id.in_(offered),
                                           WorkOrder.accepted_at.is_not(None)))
    due = and_(WorkOrder.accepted_at.is_not(None),
               _between(WorkOrder.arrive_deadline, since, until))
    await rollup.add("arrivals_due", of_orders(due))
    await rollup.add("on_time", of_orders(due, WorkOrder.arrived_at <= WorkOrder.arrive_deadline))
    rated = and_(WorkOrder.rating.is_not(None),
                 _between(WorkOrder.completed_at, since, until))
    await rollup.add("ratings", of_orders(rated))
    await rollup.add("rating_mean", of_orders(rated, value=func.avg(WorkOrder.rating)))
    await rollup.add("complaints", counted(_between(Complaint.opened_at, since, until))
                     .select_from(Complaint).join(WorkOrder, Complaint.order_id == WorkOrder.id)
                     .join(Elder, WorkOrder.elder_id == by_elder).group_by(region))
    closed = (select(region, OrderEvent.detail).select_from(OrderEvent)
              .join(WorkOrder, OrderEvent.order_id == WorkOrder.id)
              .join(Elder, WorkOrder.elder_id == by_elder)
              .where(OrderEvent.kind == "alarm_closed", _between(OrderEvent.at, since, until)))
    for code, detail in (await session.execute(rollup.inside(closed))).all():
        disposition = str((detail or {}).get("disposition"))
        if disposition in DISPOSITIONS:
            rollup.row(code).values[f"closed_{disposition}"] += 1

    # caring calls
    def of_rounds(*where: Any) -> Select[Any]:
        return (counted(_between(CareRound.due_at, since, until),
                        CareRound.state != RoundState.SKIPPED, *where)
                .select_from(CareRound).join(Elder, CareRound.elder_id == by_elder)
                .group_by(region))

    await rollup.add("care_due", of_rounds())
    await rollup.add("care_reached", of_rounds(CareRound.state.in_(REACHED)))
    await rollup.add("care_escalated", of_rounds(CareRound.state == RoundState.ESCALATED))
    rows = sorted(rollup.rows.values(), key=lambda r: (r.region == UNKNOWN, r.region))
    return RegionStats(level, area, since, until, rows)


def stats_table(stats: RegionStats) -> list[list[object]]:
    """The rows as cells, the total last."""
    return [row.cells() for row in [*stats.rows, stats.total()]]


def percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def format_region_stats(stats: RegionStats) -> str:
    """A readable summary: one block per region, then the total."""
    area = str(stats.area) if stats.area is not None else "every region"
    lines = [f"Statistics by {stats.level.value}, {area}, "
             f"{stats.since:%Y-%m-%d %H:%M} to {stats.until:%Y-%m-%d %H:%M} UTC"]
    for row in [*stats.rows, stats.total()]:
        v = row.values
        services = ", ".join(f"{s} {int(v.get(f'orders_{s}', 0))}" for s in SERVICES
                             if v.get(f"orders_{s}"))
        closed = ", ".join(f"{d} {int(v.get(f'closed_{d}', 0))}" for d in DISPOSITIONS)
        lines += [
            f"{row.region}:",
            f"  calls {int(v.get('calls', 0))}; to operators {int(v.get('to_operators', 0))}, "
            f"answered within 15 s {percent(v.get('answered_15s', 0), v.get('to_operators', 0))}"
            f", abandoned {int(v.get('abandoned', 0))}",
            f"  orders: {services or 'none'}",
            f"  vendors: accepted {int(v.get('accepted', 0))} of {int(v.get('offered', 0))} "
            f"offered; on time {int(v.get('on_time', 0))} of {int(v.get('arrivals_due', 0))}; "
            f"ratings {int(v.get('ratings', 0))} (mean {v.get('rating_mean', 0):.2f}); "
            f"complaints {int(v.get('complaints', 0))}",
            f"  alarms {int(v.get('alarms', 0))}; their calls answered within 60 s "
            f"{percent(v.get('answered_60s', 0), v.get('alarm_calls', 0))}, 180 s "
            f"{percent(v.get('answered_180s', 0), v.get('alarm_calls', 0))}; closed: {closed}",
            f"  caring calls: {int(v.get('care_reached', 0))} of {int(v.get('care_due', 0))} "
            f"reached, {int(v.get('care_escalated', 0))} escalated",
        ]
    return "\n".join(lines)
