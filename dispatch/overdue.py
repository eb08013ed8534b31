"""What the dispatcher's sweep finds: orders left without a next step, and overdue alerts.

Alerts (each raised once per order, on its timeline): acceptance late, arrival late,
completion unconfirmed. On PostgreSQL the sweep holds an advisory lock, so two engines
sweeping at once raise each alert once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.console_events import Alert
from dispatch.models import (
    CallPurpose,
    Elder,
    OrderEvent,
    OrderStatus,
    OutboundCall,
    OutboundState,
    ServiceType,
    WorkOrder,
)
from dispatch.orders import order_event
from dispatch.quality import UNREACHED
from dispatch.regions import Place

NEW_ORDER_GRACE_S = 5.0  # the engine that took the call plans it; others step in after this
SWEEP_LIMIT = 500
_ALERT_LOCK = 12350
LIVE = (OutboundState.SCHEDULED, OutboundState.DIALING, OutboundState.ANSWERED)


class AlertTimes(Protocol):
    accept_warn_s: float
    max_service_s: float


def _no_live(purpose: CallPurpose) -> Any:
    return ~exists().where(OutboundCall.order_id == WorkOrder.id,
                           OutboundCall.purpose == purpose, OutboundCall.state.in_(LIVE))


def _no_event(kind: str) -> Any:
    return ~exists().where(OrderEvent.order_id == WorkOrder.id, OrderEvent.kind == kind)


async def stalled_orders(session: AsyncSession, now: datetime) -> list[tuple[int, CallPurpose]]:
    """Orders whose next step nobody has taken (an engine died between two steps)."""
    grace = now - timedelta(seconds=NEW_ORDER_GRACE_S)
    offers = await session.scalars(
        select(WorkOrder.id).where(
            ((WorkOrder.status == OrderStatus.NEW) & (WorkOrder.created_at < grace))
            | (WorkOrder.status == OrderStatus.DISPATCHING),
            WorkOrder.service != ServiceType.EMERGENCY,
            _no_live(CallPurpose.VENDOR_OFFER),
        ).limit(SWEEP_LIMIT)
    )
    callbacks = await session.scalars(
        select(WorkOrder.id).where(
            WorkOrder.status == OrderStatus.COMPLETED, WorkOrder.rating.is_(None),
            _no_live(CallPurpose.QUALITY_CALLBACK), _no_event(UNREACHED),
        ).limit(SWEEP_LIMIT)
    )
    return ([(i, CallPurpose.VENDOR_OFFER) for i in offers]
            + [(i, CallPurpose.QUALITY_CALLBACK) for i in callbacks])


async def overdue_alerts(session: AsyncSession, now: datetime, times: AlertTimes
                         ) -> list[Alert]:
    """Record and return the alerts due now, each once per order. COMMITs."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ALERT_LOCK})
    checks = (
        ("late_acceptance", (WorkOrder.status.in_((OrderStatus.NEW, OrderStatus.DISPATCHING)),
                             WorkOrder.service != ServiceType.EMERGENCY,
                             WorkOrder.created_at
                             < now - timedelta(seconds=times.accept_warn_s))),
        ("late_arrival", (WorkOrder.status == OrderStatus.ACCEPTED,
                          WorkOrder.arrive_deadline < now)),
        ("completion_unconfirmed", (WorkOrder.status == OrderStatus.IN_SERVICE,
                                    WorkOrder.arrived_at
                                    < now - timedelta(seconds=times.max_service_s))),
    )
    alerts: list[Alert] = []
    for kind, where in checks:
        rows = await session.execute(
            select(WorkOrder.id, WorkOrder.order_no, WorkOrder.vendor_id, Elder.province_code,
                   Elder.city_code, Elder.county_code)
            .join(Elder, Elder.id == WorkOrder.elder_id)
            .where(*where, _no_event(kind)).limit(SWEEP_LIMIT)
        )
        for order_id, order_no, vendor_id, *codes in rows.all():
            statement, params = order_event(order_id, kind, now, {"vendor_id": vendor_id})
            await session.execute(statement, params)
            alerts.append(Alert(kind=kind, order_id=order_id, order_no=order_no,
                                vendor_id=vendor_id, place=Place(*codes)))
    await session.commit()
    return alerts
