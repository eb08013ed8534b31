"""What the flows of answered outbound calls share: finding the attempt, keys, the outcome."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch import outbound
from dispatch.models import OfferOutcome, OutboundState
from dispatch.offers import record_outcome
from dispatch.outbound import Attempt
from ivr.agi.session import AgiSession
from ivr.context import EngineContext
from ivr.dialplan_contract import ChannelVar
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)

KEY_TIMEOUT_MS = 8000
MAX_REPEATS = 3


async def answered_attempt(agi: AgiSession, ctx: EngineContext) -> Attempt | None:
    """The attempt this answered call belongs to, marked answered; None if unknown or settled."""
    raw = await agi.get_variable(ChannelVar.ATTEMPT_ID)
    if not raw or not raw.isdigit():
        log.error("outbound call %s without a valid attempt id", agi.env.uniqueid)
        return None
    async def awaiting(session: AsyncSession) -> Attempt | None:
        attempt = await outbound.get_attempt(session, int(raw))
        if attempt is None or attempt.state not in outbound.ACTIVE_STATES:
            log.warning("attempt %s is not awaiting an answer", raw)
            return None
        if attempt.state is OutboundState.DIALING:
            await outbound.mark_answered(session, attempt.id, ctx.now(), agi.env.uniqueid)
        return attempt

    if ctx.dispatcher is not None and agi.env.uniqueid:
        ctx.dispatcher.line_until_hangup(int(raw), agi.env.uniqueid)
    return (await storage_step(ctx.urgent_writing, awaiting, log, "attempt %s unreadable",
                               raw)).value


async def settle(ctx: EngineContext, attempt: Attempt, outcome: OfferOutcome) -> None:
    """Record a call's outcome once, then let the dispatcher take the order's next step."""
    settled = await storage_step(
        ctx.urgent_writing, lambda session: record_outcome(session, attempt, outcome, ctx.now()),
        log, "outcome %s of attempt %s not stored (the sweep settles it)", outcome, attempt.id)
    if settled.value and ctx.dispatcher is not None:
        ctx.dispatcher.attempt_settled(attempt)


async def ask(agi: AgiSession, ctx: EngineContext, prompts: list[str], keys: str,
              rounds: int, repeat_key: str | None = None) -> str | None:
    """Play ``prompts`` (keys cut them short) until one of ``keys``; None if none came.

    ``repeat_key`` replays the prompts (a few times at most) without using up a round;
    silence or a wrong key uses a round, with a short notice before the next one.
    """
    language = ctx.settings.ivr.default_language
    escape = keys + (repeat_key or "")
    used = repeats = 0
    while used < rounds:
        digit: str | None = None
        for path in prompts[:-1]:
            played = await agi.stream_file(path, escape)
            if played.digit:
                digit = played.digit
                break
        if digit is None:
            digit = (await agi.get_data(prompts[-1], KEY_TIMEOUT_MS, 1)).digits or None
        if digit is not None and digit == repeat_key and repeats < MAX_REPEATS:
            repeats += 1
            continue
        if digit is not None and digit in keys:
            return digit
        used += 1
        if used < rounds:
            notice = "invalid_input" if digit else "no_input"
            await agi.stream_file(ctx.prompts.path(notice, language))
    return None
