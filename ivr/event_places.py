"""The region an event about an order or an elder carries, read once per event (empty if
unreadable)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.profile import elder_place
from dispatch.profile import order_place as read_order_place
from dispatch.regions import Place
from ivr.context import EngineContext
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)


async def order_place(ctx: EngineContext, order_id: int) -> Place:
    """The region of the order's elder; empty (the event still goes out) if the database
    does not answer."""
    async def read(session: AsyncSession) -> Place:
        return await read_order_place(session, order_id)

    step = await storage_step(ctx.sessions, read, log, "region of order %s unavailable",
                              order_id)
    return step.value or Place()


async def elder_place_of(ctx: EngineContext, elder_id: int) -> Place:
    """The elder's region; empty (the event still goes out) if the database does not
    answer."""
    step = await storage_step(ctx.sessions, lambda session: elder_place(session, elder_id), log,
                              "region of elder %s unavailable", elder_id)
    return step.value or Place()
