"""What the console reads, always within the account's region.

Every query joins the elder and applies ``RegionScope.elder_condition()``: a row outside the
region is never loaded, so a page cannot show it by mistake. Orders outside the region look
exactly like orders that do not exist; ``order_exists`` tells the two apart for the audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import (
    Call,
    Elder,
    ElderPhone,
    OrderEvent,
    OrderStatus,
    OutboundCall,
    Recording,
    RecordingKind,
    Vendor,
    VendorStatus,
    WorkOrder,
    vendor_coverage,
)
from dispatch.orders import is_valid_order_no
from dispatch.phones import normalize
from dispatch.recordings import call_answered
from dispatch.regions import RegionScope

SEARCH_LIMIT = 50
QUERY_MAX = 64


@dataclass(frozen=True, slots=True)
class OrderRow:
    order_no: str
    service: str
    status: str
    created_at: datetime
    elder_id: int
    elder_name: str
    county_name: str | None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of an order's timeline: an order event, a call, or an offer to a vendor."""

    at: datetime
    kind: str
    detail: dict[str, Any]
    recording: str | None = None  # a recording's token: played on the timeline


@dataclass(frozen=True, slots=True)
class OrderView:
    order: WorkOrder
    elder: Elder
    vendor_name: str | None
    timeline: list[TimelineEntry]


def _orders() -> Select[Any]:
    return (select(WorkOrder.order_no, WorkOrder.service, WorkOrder.status, WorkOrder.created_at,
                   Elder.id, Elder.name, Elder.county_name)
            .join(Elder, Elder.id == WorkOrder.elder_id))


def _rows(result: Any) -> list[OrderRow]:
    return [OrderRow(no, str(service), str(status), at, elder_id, name, county)
            for no, service, status, at, elder_id, name, county in result]


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_orders(session: AsyncSession, scope: RegionScope, query: str,
                        local_area_code: str) -> list[OrderRow]:
    """Orders by order number, the elder's phone, or part of the elder's name; newest first."""
    query = query.strip()[:QUERY_MAX]
    if not query:
        return []
    statement = _orders().where(scope.elder_condition())
    number = normalize(query, local_area_code) if not is_valid_order_no(query) else None
    if is_valid_order_no(query):
        statement = statement.where(WorkOrder.order_no == query)
    elif number is not None:
        statement = statement.where(or_(
            exists().where(ElderPhone.elder_id == Elder.id, ElderPhone.number_e164 == number),
            exists().where(Call.order_id == WorkOrder.id, Call.caller_number == number)))
    else:
        statement = statement.where(Elder.name.like(_like(query), escape="\\"))
    result = await session.execute(
        statement.order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc()).limit(SEARCH_LIMIT))
    return _rows(result)


async def escalated_orders(session: AsyncSession, scope: RegionScope) -> list[OrderRow]:
    """Orders no vendor took, waiting for an operator; oldest first."""
    result = await session.execute(
        _orders().where(scope.elder_condition(), WorkOrder.status == OrderStatus.ESCALATED)
        .order_by(WorkOrder.created_at, WorkOrder.id).limit(500))
    return _rows(result)


async def visible_order(session: AsyncSession, scope: RegionScope, order_no: str
                        ) -> WorkOrder | None:
    """The order with this number if it lies in ``scope``, else None."""
    if not is_valid_order_no(order_no):
        return None
    return await session.scalar(
        select(WorkOrder).join(Elder, Elder.id == WorkOrder.elder_id)
        .where(WorkOrder.order_no == order_no, scope.elder_condition()))


async def order_exists(session: AsyncSession, order_no: str) -> bool:
    """True if some order has this number, in any region (for the audit of a refusal)."""
    if not is_valid_order_no(order_no):
        return False
    return bool(await session.scalar(select(exists().where(WorkOrder.order_no == order_no))))


async def order_view(session: AsyncSession, scope: RegionScope, order_no: str
                     ) -> OrderView | None:
    """The order, its elder, its vendor and its whole timeline, if it lies in ``scope``."""
    order = await visible_order(session, scope, order_no)
    if order is None:
        return None
    elder = await session.get(Elder, order.elder_id)
    assert elder is not None
    vendor = await session.get(Vendor, order.vendor_id) if order.vendor_id else None
    return OrderView(order, elder, vendor.name if vendor else None,
                     await _timeline(session, order))


async def _timeline(session: AsyncSession, order: WorkOrder) -> list[TimelineEntry]:
    entries = [TimelineEntry(at, kind, detail or {}) for at, kind, detail in (await session.execute(
        select(OrderEvent.at, OrderEvent.kind, OrderEvent.detail)
        .where(OrderEvent.order_id == order.id))).all()]
    calls = or_(Call.order_id == order.id,
                Call.uniqueid == order.call_uniqueid if order.call_uniqueid else False)
    for call in (await session.scalars(select(Call).where(calls))).all():
        entries.append(TimelineEntry(call.started_at, f"call_{call.direction}", {
            "caller": call.caller_number, "identity": call.identity_status,
            "answered_at": call.answered_at, "ended_at": call.ended_at,
            "disposition": call.disposition, "reason": call.reason}))
    own = [Recording.order_id == order.id,
           Recording.uniqueid.in_(select(Call.uniqueid).where(calls))]
    if order.call_uniqueid:
        own.append(Recording.uniqueid == order.call_uniqueid)
    heard = or_(Recording.kind == RecordingKind.MESSAGE, call_answered())
    for recording in (await session.scalars(
            select(Recording).where(or_(*own), heard, Recording.deleted_at.is_(None)))).all():
        entries.append(TimelineEntry(recording.started_at, f"recording_{recording.kind.value}",
                                     {"call": recording.uniqueid,
                                      "seconds": recording.duration_s}, recording.token))
    offers = select(OutboundCall, Vendor.name).outerjoin(
        Vendor, Vendor.id == OutboundCall.vendor_id).where(OutboundCall.order_id == order.id)
    for attempt, vendor in (await session.execute(offers)).all():
        entries.append(TimelineEntry(attempt.due_at, f"outbound_{attempt.purpose.value}", {
            "vendor": vendor, "try": attempt.tries, "state": attempt.state.value,
            "outcome": attempt.outcome, "finished_at": attempt.finished_at}))
    return sorted(entries, key=lambda entry: entry.at)


async def visible_call_caller(session: AsyncSession, scope: RegionScope, uniqueid: str
                              ) -> str | None:
    """The caller's number of the ended call ``uniqueid`` if the call is the region's (its
    elder lives in ``scope``, or no elder is known for it, as on the worklist), else None."""
    return await session.scalar(
        select(Call.caller_number).outerjoin(Elder, Elder.id == Call.elder_id)
        .where(Call.uniqueid == uniqueid, or_(Call.elder_id.is_(None), scope.elder_condition())))


async def visible_elder(session: AsyncSession, scope: RegionScope, elder_id: int
                        ) -> Elder | None:
    """The elder if they live in ``scope``, else None."""
    return await session.scalar(select(Elder).where(Elder.id == elder_id,
                                                    scope.elder_condition()))


async def search_elders(session: AsyncSession, scope: RegionScope, query: str,
                        local_area_code: str) -> list[Elder]:
    """Elders of ``scope`` by phone number or part of the name."""
    query = query.strip()[:QUERY_MAX]
    if not query:
        return []
    statement = select(Elder).where(scope.elder_condition())
    number = normalize(query, local_area_code)
    if number is not None:
        statement = statement.where(exists().where(ElderPhone.elder_id == Elder.id,
                                                   ElderPhone.number_e164 == number))
    else:
        statement = statement.where(Elder.name.like(_like(query), escape="\\"))
    return list((await session.scalars(statement.order_by(Elder.name, Elder.id)
                                       .limit(SEARCH_LIMIT))).all())


async def vendors_for(session: AsyncSession, county_code: str | None) -> list[tuple[int, str]]:
    """Active vendors covering ``county_code``: (id, name), by name."""
    rows = await session.execute(
        select(Vendor.id, Vendor.name)
        .join(vendor_coverage, vendor_coverage.c.vendor_id == Vendor.id)
        .where(vendor_coverage.c.county_code == county_code,
               Vendor.status == VendorStatus.ACTIVE)
        .order_by(Vendor.name, Vendor.id))
    return [(vendor_id, name) for vendor_id, name in rows]
