"""The quality callback's rating keys, against a scripted Asterisk in memory
(tests/agi_memory.py): a rating of 1 or 2 opens a complaint, 3 to 5 do not, a wrong key or
silence twice is no_key, a hang-up is hangup. No timing is involved; the same calls over real
TCP with the simulator are in test_dispatch_calls.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import select

from dispatch import outbound
from dispatch.models import CallPurpose, Complaint, OrderStatus, WorkOrder
from ivr.context import EngineContext
from ivr.flows.quality_callback import QualityCallbackFlow
from tests.agi_memory import CLOSE, DEAD, TIMEOUT, ScriptedAsterisk, Step, step
from tests.flow_context import dialled_attempt, open_flow_context

pytestmark = pytest.mark.asyncio(loop_scope="module")

INTRO = 'STREAM FILE hotline/zh/rating_intro "12345"'
KEYS = "GET DATA hotline/zh/rating_keys 8000 1"
PLAYED = "200 result=0 endpos=8000"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ctx(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EngineContext]:
    async for opened in open_flow_context(tmp_path_factory.mktemp("quality-flow")):
        yield opened


def said(name: str) -> Step:
    return step(f'STREAM FILE hotline/zh/{name} ""', PLAYED)


async def callback(ctx: EngineContext, script: list[Step]) -> tuple[str | None, int | None,
                                                                     list[int]]:
    """One answered callback on a completed order: the attempt's outcome, the order's
    rating and the ratings of its complaints."""
    attempt = await dialled_attempt(ctx, CallPurpose.QUALITY_CALLBACK,
                                    status=OrderStatus.COMPLETED, completed_at=ctx.now())
    asterisk = ScriptedAsterisk([
        step("GET VARIABLE HOTLINE_ATTEMPT_ID", f"200 result=1 ({attempt.id})"), *script])
    await asterisk.serve(QualityCallbackFlow(ctx), "quality_callback", callerid="12349")
    async with ctx.sessions() as session:
        stored = await outbound.get_attempt(session, attempt.id)
        rating = await session.scalar(select(WorkOrder.rating)
                                      .where(WorkOrder.id == attempt.order_id))
        complaints = list(await session.scalars(select(Complaint.rating)
                                                .where(Complaint.order_id == attempt.order_id)))
    assert stored is not None
    return stored.outcome, rating, complaints


@pytest.mark.parametrize(("key", "closing", "complaints"), [
    ("1", "rating_sorry", [1]), ("2", "rating_sorry", [2]), ("3", "rating_thanks", []),
    ("5", "rating_thanks", []),
])
async def test_a_rating_is_stored_and_a_poor_one_opens_a_complaint(
        ctx: EngineContext, key: str, closing: str, complaints: list[int]) -> None:
    assert await callback(ctx, [step(INTRO, PLAYED), step(KEYS, f"200 result={key}"),
                                said(closing)]) == ("rated", int(key), complaints)


async def test_a_key_during_the_intro_is_the_rating(ctx: EngineContext) -> None:
    assert await callback(ctx, [step(INTRO, "200 result=52 endpos=3000"),
                                said("rating_thanks")]) == ("rated", 4, [])


async def test_a_wrong_key_then_silence_is_no_key(ctx: EngineContext) -> None:
    assert await callback(ctx, [step(INTRO, PLAYED), step(KEYS, "200 result=8"),
                                said("invalid_input"), step(INTRO, PLAYED), step(KEYS, TIMEOUT),
                                said("goodbye")]) == ("no_key", None, [])


@pytest.mark.parametrize("reply", [("200 result=-1",), ("HANGUP", DEAD), (CLOSE,)])
async def test_a_hangup_before_the_rating_is_hangup(ctx: EngineContext,
                                                    reply: tuple[str, ...]) -> None:
    assert await callback(ctx, [step(INTRO, PLAYED), step(KEYS, *reply)]) == (
        "hangup", None, [])
