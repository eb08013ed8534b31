"""Order ids reserved ahead from PostgreSQL's sequence, a block at a time.

An order's number is derived from its id (``dispatch.orders.order_no_for``). Known before
the insert, it lets the order, its "created" event and the outbox row announcing it (whose
payload carries the number) go to the server as one statement instead of a transaction of
five round trips. One query reserves ``BLOCK`` ids for this process; ids a stopped process
never used are skipped, as a rolled-back insert's are. Other databases (SQLite) number the
order after its insert.
"""

from __future__ import annotations

import weakref
from collections import deque
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from dispatch.db import fetch_committed_rows

BLOCK = 256  # a refill (a pooled connection and a round trip) every 256 orders

_NEXT_IDS = select(
    func.nextval(func.pg_get_serial_sequence("work_orders", "id"))
).select_from(func.generate_series(1, BLOCK))

_reserved: weakref.WeakKeyDictionary[Any, deque[int]] = weakref.WeakKeyDictionary()


async def reserve_order_id(session: AsyncSession) -> int | None:
    """An unused order id for an insert through ``session``'s PostgreSQL engine (asyncpg),
    or None where ids are not reserved ahead (another database, or a session bound to one
    connection, whose transaction a test rolls back)."""
    bind = session.bind
    if not isinstance(bind, AsyncEngine) or bind.dialect.driver != "asyncpg":
        return None
    ids = _reserved.get(bind.sync_engine)
    if ids is None:
        ids = _reserved[bind.sync_engine] = deque()
    if not ids:
        # concurrent refills each add a block of their own; every waiter takes one id
        # right after its own block arrived, so none finds the queue empty
        ids.extend(int(row[0]) for row in await fetch_committed_rows(bind, _NEXT_IDS, {}))
    return ids.popleft()
