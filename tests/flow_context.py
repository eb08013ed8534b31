"""What a call flow needs from the engine, built without the engine's listeners: a migrated
SQLite file, an embedded Redis, the real prompt catalogue, the wall clock. For flow tests
driven by :class:`tests.agi_memory.ScriptedAsterisk`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade
from ivr.acks import Acknowledgements
from ivr.clock import ScaledClock
from ivr.config import load_settings
from ivr.context import EngineContext
from ivr.dispatcher import Dispatcher
from ivr.live import LiveState
from ivr.prompts import PromptCatalogue
from ivr.redis_link import open_redis
from tests.storage import sqlite_url


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
            settings=settings, sessions=async_sessionmaker_for(db_engine),
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
