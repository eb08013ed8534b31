"""The dispatcher credits the month's vouchers one elder a write, so a caller's urgent write
(an emergency's order) waits for one elder's transaction, never for the whole batch: on
SQLite, where every write of the process takes turns at one gate."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest_asyncio
from sqlalchemy import func, select

from dispatch.charging import SubsidyRule
from dispatch.models import Elder, LedgerTransaction, SubsidyCategory
from ivr.context import EngineContext
from tests.flow_context import open_flow_context

ELDERS = 40
RULES = {"sanwu": SubsidyRule(voucher_fen=5000, carry_over=False, share=Decimal("0.8"))}


async def vouchers(ctx: EngineContext) -> int:
    async with ctx.sessions() as session:
        return int(await session.scalar(
            select(func.count()).select_from(LedgerTransaction)
            .where(LedgerTransaction.kind == "voucher")) or 0)


@pytest_asyncio.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[EngineContext]:
    async for opened in open_flow_context(tmp_path):
        yield opened


async def test_an_urgent_write_goes_between_two_elders_vouchers(ctx: EngineContext) -> None:
    async with ctx.writing() as session:
        session.add_all(Elder(name=f"老人{index}", county_code="620102",
                              subsidy_category=SubsidyCategory.SANWU)
                        for index in range(ELDERS))
        await session.commit()
    assert ctx.dispatcher is not None
    ctx.dispatcher.rules = RULES
    sweep_writes = asyncio.Event()
    gated = ctx.writing

    @contextlib.asynccontextmanager
    async def noting(urgent: bool = False) -> AsyncIterator[object]:
        if not urgent:
            sweep_writes.set()
        async with gated(urgent) as session:
            yield session

    ctx.writing = noting  # type: ignore[method-assign]
    sweep = asyncio.create_task(ctx.dispatcher.money_sweep(ctx.now()))
    await sweep_writes.wait()  # the sweep holds the gate for its first elder
    async with ctx.writing(urgent=True):
        credited_before_the_urgent_write = await vouchers(ctx)
    await sweep
    assert credited_before_the_urgent_write <= 1
    assert await vouchers(ctx) == ELDERS  # and the sweep went on to credit every elder
