"""The screen pop: who is on a call that is about to reach the operators, on their consoles."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.console_events import ScreenPop
from dispatch.profile import elder_place, elder_profile
from dispatch.regions import Place
from ivr.context import EngineContext
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)


async def publish_screen_pop(
    ctx: EngineContext, *, uniqueid: str, linkedid: str | None, reason: str, priority: int,
    caller: str | None, caller_status: str, relation: str | None, order_no: str | None,
    elder_id: int | None, household: list[int] | None = None,
) -> Place:
    """Publish a ``screen_pop`` event with the elder's profile (None if unknown or unreadable)
    before the call reaches the operators; from a number several elders share and no member
    chosen, ``household`` names them all and each one's profile is in the event. Returns the
    elder's place (unknown: ``Place()``), whose operators' pages show it."""
    profile = None
    members: list[dict[str, Any] | None] = []
    place = Place()
    if elder_id is not None:
        async def profiles(session: AsyncSession) -> tuple[Any, list[Any], Place]:
            own = await elder_profile(session, elder_id)
            others = [own if member_id == elder_id else await elder_profile(session, member_id)
                      for member_id in household or []]
            return own, others, await elder_place(session, elder_id)

        read = await storage_step(ctx.sessions.urgent, profiles, log,
                                  "profile of elder %s unavailable: the pop goes without it",
                                  elder_id, level=logging.WARNING)
        if read.value is not None:
            profile, members, place = read.value
    await ctx.live.publish(ScreenPop(
        uniqueid=uniqueid, linkedid=linkedid, reason=reason, priority=priority, caller=caller,
        caller_status=caller_status, relation=relation, order_no=order_no, profile=profile,
        household=members, place=place))
    return place
