"""What a call flow needs from the engine, built without the engine's listeners: a migrated
SQLite file, an embedded Redis, the real prompt catalogue, the wall clock. For flow tests
driven by :class:`tests.agi_memory.ScriptedAsterisk`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dispatch import outbound
from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade
from dispatch.models import CallPurpose
from ivr.acks import Acknowledgements
from ivr.clock import ScaledClock
from ivr.config import load_settings
from ivr.context import EngineContext
from ivr.dispatcher import Dispatcher
from ivr.live import LiveState
from ivr.prompts import PromptCatalogue
from ivr.redis_link import open_redis
from tests.storage import sqlite_url
from tests.vendor_world import add_elder, add_order, add_vendor


async def open_flow_context(folder: Path) -> AsyncIterator[EngineContext]:
    """An EngineContext on fresh storage in ``folder``, with a dispatcher that dials nothing
    (no AMI link): it stores acceptances and plans next attempts only."""
    db_url = sqlite_url(folder)
    upgrade(db_url)
    settings = load_settings(None, database={"url": db_url}, ami={"enabled": False},
                             redis={"url": "", "embedded_path": str(folder / "redis.db"),
                                    "key_prefix": f"f{uuid.uuid4().hex[:8]}:"})
    db_engine = make_async_engine(db_url, settings.database.pool_size)
    redis = open_redis(settings.redis)
    try:
        ctx = EngineContext(
            settings=settings, session_maker=async_sessionmaker_for(db_engine),
            live=LiveState(redis.client, settings.redis.key_prefix),
            prompts=PromptCatalogue.load(default_language=settings.ivr.default_language,
                                         prefix=settings.ivr.prompt_prefix),
            clock=ScaledClock(), acks=Acknowledgements(redis.client, settings.redis.key_prefix),
        )
        ctx.dispatcher = Dispatcher(ctx, None, redis.client)
        try:
            yield ctx
        finally:
            await ctx.dispatcher.close()
    finally:
        await redis.close()
        await db_engine.dispose()


async def dialled_attempt(ctx: EngineContext, purpose: CallPurpose, **order: Any
                          ) -> outbound.Attempt:
    """A call attempt of ``purpose`` on a new order of a new elder, with a vendor of its own,
    claimed for dialling as the dispatcher claims it before the Originate. ``order`` moves
    the order on (see tests.vendor_world.add_order); ``vendor_id`` is filled in."""
    now = ctx.now()
    async with ctx.writing() as session:
        elder_id = await add_elder(session, created=now)
        vendor_id = await add_vendor(session, "兰州餐饮服务社")
        if order:
            order["vendor_id"] = vendor_id
        placed = await add_order(session, elder_id, now, **order)
        attempt_id = await outbound.schedule(
            session, purpose=purpose, order_id=placed.id, seq=1, vendor_id=vendor_id,
            number_e164="+869310000001", tries=1, due_at=now)
        assert attempt_id is not None
        claim = await outbound.claim(session, attempt_id, engine_id="flow-test", at=now,
                                     caps=outbound.Caps(ctx.longest_call, 30, 1))
    assert claim.attempt is not None
    return claim.attempt
