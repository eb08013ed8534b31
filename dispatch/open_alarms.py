"""Open emergencies as the emergency watch and the worklist see them.

An emergency order is open until a disposition closes it. It is *attended* once an operator
answered a call for it: the elder's own call (``call_uniqueid``) or one of the engine's
callbacks, whose uniqueids the ``emergency_retry`` events on the order's timeline keep. A call
for it is *in progress* while it waits in the operator queue (a queue record with no outcome
yet, no older than ``stale_s``). Open, not attended and nothing in progress: nobody is on it,
and the engine keeps trying (``ivr/emergency_watch.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import (
    Elder,
    OrderEvent,
    OrderStatus,
    PhoneKind,
    QueueCall,
    ServiceType,
    WorkOrder,
)
from dispatch.regions import Place, RegionScope

CALLBACK_REASON = "emergency_callback"  # HOTLINE_REASON of the callbacks (dialplan)
RETRY_EVENT = "emergency_retry"  # one timeline event per callback, whatever its outcome
CLOSED = (OrderStatus.COMPLETED, OrderStatus.CANCELLED)
CALLBACK_KINDS = (PhoneKind.HANDSET, PhoneKind.MOBILE, PhoneKind.LANDLINE)  # tried first
_CHUNK = 500  # uniqueids per IN (...) list


@dataclass(frozen=True, slots=True)
class Retry:
    """One callback as its timeline event recorded it."""

    at: datetime
    outcome: str
    uniqueid: str | None


@dataclass(frozen=True, slots=True)
class QueueState:
    """What the queue record of one call says: answered, still waiting, or over."""

    since: datetime | None  # entered the queue
    answered: bool
    ended: bool  # answered, abandoned or given up on (the dialplan's HotlineCallbackNeeded)

    @classmethod
    def of(cls, row: Any) -> QueueState:
        return cls(since=row.queued_at or row.joined_at, answered=row.answered_at is not None,
                   ended=row.outcome is not None or row.answered_at is not None
                   or row.abandoned_at is not None)

    def waiting(self, now: datetime, stale_s: float) -> bool:
        return (not self.ended and self.since is not None
                and self.since >= now - timedelta(seconds=stale_s))


@dataclass(frozen=True, slots=True)
class OpenAlarm:
    order_id: int
    order_no: str
    elder_id: int
    elder_name: str
    address: str | None
    created_at: datetime
    answered: bool  # an operator answered a call for it
    in_progress: bool  # a call for it waits in the operator queue now
    retries: tuple[Retry, ...]
    place: Place  # the elder's region

    @property
    def unattended(self) -> bool:
        return not self.answered and not self.in_progress

    @property
    def attempts(self) -> int:
        return len(self.retries)

    @property
    def last_outcome(self) -> str | None:
        return self.retries[-1].outcome if self.retries else None

    def age_s(self, now: datetime) -> float:
        return (now - self.created_at).total_seconds()

    def next_callback_at(self, min_gap_s: float, max_gap_s: float) -> datetime:
        """The first callback ``min_gap_s`` after the order; each one after that waits twice
        as long after the previous callback as the one before it, up to ``max_gap_s``."""
        return (self.retries[-1].at if self.retries else self.created_at) + timedelta(
            seconds=backoff_s(self.attempts, min_gap_s, max_gap_s))


def backoff_s(callbacks: int, min_gap_s: float, max_gap_s: float) -> float:
    """The wait after ``callbacks`` callbacks (after the order itself when none)."""
    return min(max_gap_s, min_gap_s * 2.0 ** min(callbacks, 30))


def summarize(order: Any, retries: Sequence[Retry], calls: dict[str, QueueState],
              now: datetime, stale_s: float) -> OpenAlarm:
    """One open order from its row (``WorkOrder``/``Elder`` columns), its callbacks and the
    queue records of its calls."""
    uniqueids = [order.call_uniqueid, *(retry.uniqueid for retry in retries)]
    states = [calls[uid] for uid in uniqueids if uid is not None and uid in calls]
    return OpenAlarm(
        order_id=order.id, order_no=order.order_no, elder_id=order.elder_id,
        elder_name=order.name, address=order.address, created_at=order.created_at,
        answered=any(state.answered for state in states),
        in_progress=any(state.waiting(now, stale_s) for state in states),
        retries=tuple(retries),
        place=Place(order.province_code, order.city_code, order.county_code),
    )


async def open_alarms(session: AsyncSession, now: datetime, stale_s: float,
                      order_id: int | None = None, scope: RegionScope | None = None
                      ) -> list[OpenAlarm]:
    """Every open emergency order (or only ``order_id``; only ``scope``'s elders), oldest
    first."""
    where = [WorkOrder.service == ServiceType.EMERGENCY, WorkOrder.status.not_in(CLOSED)]
    if order_id is not None:
        where.append(WorkOrder.id == order_id)
    if scope is not None:
        where.append(scope.elder_condition())
    orders = (await session.execute(
        select(WorkOrder.id, WorkOrder.order_no, WorkOrder.elder_id, WorkOrder.created_at,
               WorkOrder.call_uniqueid, Elder.name, Elder.address, Elder.province_code,
               Elder.city_code, Elder.county_code)
        .join(Elder, Elder.id == WorkOrder.elder_id)
        .where(*where).order_by(WorkOrder.created_at, WorkOrder.id)
    )).all()
    if not orders:
        return []
    retries: dict[int, list[Retry]] = {}
    for event_order, at, detail in (await session.execute(
        select(OrderEvent.order_id, OrderEvent.at, OrderEvent.detail)
        .join(WorkOrder, WorkOrder.id == OrderEvent.order_id)
        .join(Elder, Elder.id == WorkOrder.elder_id)
        .where(*where, OrderEvent.kind == RETRY_EVENT).order_by(OrderEvent.id)
    )).all():
        detail = detail or {}
        retries.setdefault(event_order, []).append(
            Retry(at=at, outcome=str(detail.get("outcome")), uniqueid=detail.get("uniqueid")))
    uniqueids = {order.call_uniqueid for order in orders if order.call_uniqueid}
    uniqueids.update(retry.uniqueid for group in retries.values() for retry in group
                     if retry.uniqueid)
    calls = await queue_states(session, uniqueids)
    return [summarize(order, retries.get(order.id, []), calls, now, stale_s)
            for order in orders]


async def queue_states(session: AsyncSession, uniqueids: Iterable[str]
                       ) -> dict[str, QueueState]:
    """The queue record of each of ``uniqueids`` that has one."""
    wanted = sorted(uniqueids)
    states: dict[str, QueueState] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = (await session.execute(
            select(QueueCall.uniqueid, QueueCall.queued_at, QueueCall.joined_at,
                   QueueCall.answered_at, QueueCall.abandoned_at, QueueCall.outcome)
            .where(QueueCall.uniqueid.in_(wanted[start:start + _CHUNK]))
        )).all()
        states.update((row.uniqueid, QueueState.of(row)) for row in rows)
    return states


async def emergency_backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many emergency orders are open, and when the oldest was opened (None if none)."""
    count, oldest = (await session.execute(
        select(func.count(), func.min(WorkOrder.created_at))
        .where(WorkOrder.service == ServiceType.EMERGENCY, WorkOrder.status.not_in(CLOSED))
    )).one()
    return int(count or 0), oldest  # MIN() keeps the column's type: an aware UTC datetime
