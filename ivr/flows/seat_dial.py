"""FastAGI route ``seat_dial``: may this operator's seat call the number it dialled?

The dialplan (``[hotline-seat-dial]``) asks before every outside call from a seat and dials
the trunk only on ``HOTLINE_DIAL_ALLOWED=yes``, with the digits in ``HOTLINE_DIAL_NUMBER``.
The dialled number is the channel's extension: numbers the registry knows and 120/110/119
are allowed, anything else (an unknown number, dial-string syntax, a registry that cannot be
read) is refused.
"""

from __future__ import annotations

import logging

from dispatch.phones import mask
from dispatch.seat_calls import SeatDial, SeatDialKind, check_seat_dial
from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.context import EngineContext
from ivr.dialplan_contract import ChannelVar
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)


class SeatDialFlow:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    async def __call__(self, agi: AgiSession) -> None:
        dialled = agi.env.extension
        checked = await storage_step(
            self.ctx.sessions.urgent,
            lambda session: check_seat_dial(session, dialled,
                                            self.ctx.settings.ivr.local_area_code),
            log, "seat %s: registry unreadable, call to %s refused", agi.env.channel,
            mask(dialled))
        verdict = checked.value or SeatDial(SeatDialKind.UNKNOWN, None)
        log.info("seat %s dials %s: %s, %s", agi.env.channel, mask(dialled), verdict.kind,
                 "allowed" if verdict.allowed else "refused")
        try:
            await agi.set_variable(ChannelVar.DIAL_KIND, verdict.kind.value)
            await agi.set_variable(ChannelVar.DIAL_NUMBER, verdict.digits or "")
            await agi.set_variable(ChannelVar.DIAL_ALLOWED, "yes" if verdict.allowed else "no")
        except AgiHangup:
            pass
