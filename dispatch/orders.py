"""Work orders: creation with a speakable order number, and their timeline.

Order numbers: 8 digits for the first nine million orders. The first seven digits are a
bijective scramble of the database id over 1000000..9999999 (consecutive orders do not
get neighbouring numbers, so a misheard digit rarely names another real order, and the
number reveals no order volume); the eighth is a Damm check digit, which catches every
single-digit error and every swap of adjacent digits when an operator types it back.
From id 9000000 on, the body is ``id + 1000000`` (8+ digits), so numbers stay unique.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from dispatch.console_events import ConsoleEvent
from dispatch.driver_batch import batchable
from dispatch.hotpath import Planned, write_transaction, write_transaction_rows
from dispatch.models import (
    OrderEvent,
    OrderSource,
    OrderStatus,
    OutboxEntry,
    ServiceType,
    WorkOrder,
)
from dispatch.order_ids import reserve_order_id
from dispatch.outbox import Announcement, outbox_row

__all__ = [
    "PRIORITY",
    "ServiceType",
    "StoredOrder",
    "add_order_event",
    "create_announced_order",
    "create_order",
    "emergency_key",
    "find_order",
    "is_valid_order_no",
    "order_no_for",
]

# Lower is more urgent.
PRIORITY: dict[ServiceType, int] = {
    ServiceType.EMERGENCY: 0,
    ServiceType.HEALTH: 1,
    ServiceType.MEAL: 2,
    ServiceType.HOUSEKEEPING: 3,
}

_ORDER_COLUMNS = ("elder_id", "service", "priority", "status", "source", "call_uniqueid",
                  "requested_by", "created_at", "business_key")
_INSERT_ORDER = (
    insert(WorkOrder)
    .values({name: bindparam(name) for name in _ORDER_COLUMNS})
    .returning(WorkOrder.id)
)
_SET_ORDER_NO = (
    update(WorkOrder)
    .where(WorkOrder.id == bindparam("order_id"))
    .values(order_no=bindparam("order_no"))
)
_INSERT_EVENT = insert(OrderEvent).values(
    {name: bindparam(name) for name in ("order_id", "at", "kind", "detail")}
)
# With its id reserved ahead (dispatch/order_ids.py), an order, its "created" event and the
# outbox row announcing it are one statement: one round trip, atomic without BEGIN/COMMIT
# (PostgreSQL checks the event's foreign key at the statement's end).
_NUMBERED_ORDER = (
    insert(WorkOrder)
    .values({name: bindparam(name) for name in ("id", "order_no", *_ORDER_COLUMNS)})
    .cte("new_order")
)
_CREATED_EVENT = insert(OrderEvent).values(
    order_id=bindparam("id"), at=bindparam("created_at"), kind=literal("created"),
    detail=bindparam("detail", type_=OrderEvent.__table__.c.detail.type))
_ORDER_AND_EVENT = _CREATED_EVENT.returning(OrderEvent.order_id).add_cte(_NUMBERED_ORDER)


def _order_event_and_outbox() -> Executable:
    return (insert(OutboxEntry)
            .values(kind=bindparam("outbox_kind"), payload=bindparam("payload"),
                    created_at=bindparam("created_at"))
            .returning(OutboxEntry.id)
            .add_cte(_NUMBERED_ORDER, _CREATED_EVENT.cte("new_event")))


_ORDER_EVENT_AND_OUTBOX = _order_event_and_outbox()
# The same statement for a caller's menu order, sent with the other callers' of the moment
# (dispatch/driver_batch.py). Not an emergency's: on a disaster minute, emergency orders
# batched behind each other held the screen pops and the family escalations back (README,
# "Inbound calls, the calls of the moment sent together").
_ORDER_EVENT_AND_OUTBOX_TOGETHER = batchable(_order_event_and_outbox())

_SCRAMBLED = 9_000_000  # ids below this get a scrambled 7-digit body
_BODY_BASE = 1_000_000
_MULTIPLIER = 7_919_407  # coprime with 9_000_000: multiplication is a bijection
_OFFSET = 2_718_281
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def _damm(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


def order_no_for(order_id: int) -> str:
    """The order number of database id ``order_id`` (>= 1)."""
    if order_id < 1:
        raise ValueError(f"order id must be positive, got {order_id}")
    if order_id < _SCRAMBLED:
        body = _BODY_BASE + (order_id * _MULTIPLIER + _OFFSET) % _SCRAMBLED
    else:
        body = order_id + _BODY_BASE
    text = str(body)
    return f"{text}{_damm(text)}"


def is_valid_order_no(text: str) -> bool:
    """True if ``text`` has the shape and check digit of an order number."""
    return len(text) >= 8 and text.isascii() and text.isdigit() and _damm(text) == 0


def _bounded(name: str, value: str | None, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        raise ValueError(f"{name} longer than {limit} characters")
    return value


def emergency_key(uniqueid: str) -> str:
    """The business key of the emergency order of call ``uniqueid``, whoever stores it (the
    engine during the call, the spool replay after it): the unique index keeps it one."""
    return f"emergency:{uniqueid}"[:80]


class StoredOrder(NamedTuple):
    """An order just committed: its id, and the number its caller hears."""

    id: int
    order_no: str


async def create_order(
    session: AsyncSession,
    *,
    elder_id: int,
    service: ServiceType,
    source: str,
    call_uniqueid: str | None,
    requested_by: str | None,
    at: datetime,
    note: str | None = None,
    also: Callable[[str], Sequence[Planned]] | None = None,
    business_key: str | None = None,
) -> WorkOrder:
    """Insert an order and its "created" event, COMMIT, and return it with order_no set.

    ``note`` (an operator's words) goes in the event; ``also(order_no)`` gives statements
    written in the same transaction (the console's audit row)."""
    stored, values, _ = await _create(
        session, elder_id=elder_id, service=service, source=source, call_uniqueid=call_uniqueid,
        requested_by=requested_by, at=at, note=note, also=also, business_key=business_key,
        event_of=None)
    return WorkOrder(id=stored.id, order_no=stored.order_no, **values)


async def create_announced_order(
    session: AsyncSession,
    *,
    elder_id: int,
    service: ServiceType,
    source: str,
    call_uniqueid: str | None,
    requested_by: str | None,
    at: datetime,
    event_of: Callable[[str], ConsoleEvent],
    business_key: str | None = None,
    together: bool = False,
) -> tuple[StoredOrder, Announcement]:
    """``create_order`` with the outbox row of ``event_of(order_no)`` committed with it: the
    consoles hear of the order whatever happens after the commit (``dispatch/outbox.py``).
    ``together``: sent with the other orders of the moment (a caller's menu order). Gives
    the order's id and number only: a call's flow needs no more, and an ORM instance of it
    costs about 13 µs."""
    stored, _values, announcement = await _create(
        session, elder_id=elder_id, service=service, source=source,
        call_uniqueid=call_uniqueid, requested_by=requested_by, at=at, note=None, also=None,
        business_key=business_key, event_of=event_of, together=together)
    assert announcement is not None
    return stored, announcement


async def _create(
    session: AsyncSession, *, elder_id: int, service: ServiceType, source: str,
    call_uniqueid: str | None, requested_by: str | None, at: datetime, note: str | None,
    also: Callable[[str], Sequence[Planned]] | None, business_key: str | None,
    event_of: Callable[[str], ConsoleEvent] | None, together: bool = False,
) -> tuple[StoredOrder, dict[str, Any], Announcement | None]:
    """The order stored, its column values, and its announcement if ``event_of``."""
    service = ServiceType(service)
    values = {
        "elder_id": elder_id,
        "service": service,
        "priority": PRIORITY[service],
        "status": OrderStatus.NEW,
        "source": OrderSource(source),
        "call_uniqueid": _bounded("call_uniqueid", call_uniqueid, 64),
        "requested_by": _bounded("requested_by", requested_by, 64),
        "created_at": at,
        "business_key": _bounded("business_key", business_key, 80),
    }
    detail = {"service": service.value, "source": values["source"].value,
              "requested_by": requested_by, **({"note": note} if note else {})}
    reserved = await reserve_order_id(session)
    if reserved is not None:
        order_no = order_no_for(reserved)
        event = event_of(order_no) if event_of is not None else None
        params = {**values, "id": reserved, "order_no": order_no, "detail": detail}
        if event is not None:
            params.update(outbox_kind=event.name.value, payload=event.payload())
        statement = _ORDER_AND_EVENT if event is None else (
            _ORDER_EVENT_AND_OUTBOX_TOGETHER if together and also is None
            else _ORDER_EVENT_AND_OUTBOX)
        row = await write_transaction(session, (statement, params),
                                      (lambda _row: also(order_no)) if also else None)
        assert row is not None
        announcement = Announcement(int(row[0]), event) if event is not None else None
        return StoredOrder(reserved, order_no), values, announcement
    numbered: dict[str, Any] = {}

    def number_and_log(row: Sequence[Any] | None) -> list[Planned]:
        assert row is not None
        order_id = int(row[0])
        numbered["order_no"] = order_no = order_no_for(order_id)
        numbered["event"] = event = event_of(order_no) if event_of is not None else None
        return [
            (_SET_ORDER_NO, {"order_id": order_id, "order_no": order_no}),
            (_INSERT_EVENT, {"order_id": order_id, "at": at, "kind": "created",
                             "detail": detail}),
            *(also(order_no) if also else ()),
            *((outbox_row(event, at),) if event is not None else ()),
        ]

    rows = await write_transaction_rows(session, (_INSERT_ORDER, values), number_and_log)
    first = rows[0]
    assert first is not None
    stored = StoredOrder(int(first[0]), numbered["order_no"])
    event = numbered["event"]
    if event is None:
        return stored, values, None
    outbox_id = rows[-1]
    assert outbox_id is not None
    return stored, values, Announcement(int(outbox_id[0]), event)


async def add_order_event(
    session: AsyncSession,
    order_id: int,
    kind: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event to an order's timeline and COMMIT."""
    await write_transaction(session, order_event(order_id, kind, at, detail))


def order_event(order_id: int, kind: str, at: datetime, detail: dict[str, Any] | None
                ) -> tuple[Executable, dict[str, Any]]:
    """The statement that appends an event to an order's timeline, for a write transaction."""
    return _INSERT_EVENT, {"order_id": order_id, "at": at, "kind": _bounded("kind", kind, 32),
                           "detail": detail}


async def find_order(session: AsyncSession, order_no: str) -> WorkOrder | None:
    """The order with this number, or None."""
    if not is_valid_order_no(order_no):
        return None
    result = await session.execute(select(WorkOrder).where(WorkOrder.order_no == order_no))
    return result.scalar_one_or_none()


async def latest_order_of_call(session: AsyncSession, uniqueid: str) -> WorkOrder | None:
    """The newest order a call (by its Asterisk uniqueid) created, or None."""
    result = await session.execute(
        select(WorkOrder).where(WorkOrder.call_uniqueid == uniqueid)
        .order_by(WorkOrder.id.desc()).limit(1))
    return result.scalar_one_or_none()
