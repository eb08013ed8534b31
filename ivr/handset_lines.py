"""The one-key handset lines, known without the database.

A handset call is an emergency before anything else. Should the registry not answer (the
database restarting, unreachable, locked), the caller would otherwise be an unidentified
caller in the ordinary queue. The engine keeps every handset number and its elder in memory,
read at start and every ``REFRESH_S``: a handset calling while the registry is down still
queues at emergency priority, and its order is stored once the database is back
(``ivr/emergency_orders.py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dispatch.phones import normalize
from dispatch.regions import Place
from dispatch.registry import CallerIdentity, CallerStatus, handset_owners
from ivr.periodic import repeat
from ivr.storage_steps import storage_step

if TYPE_CHECKING:
    from ivr.context import EngineContext

log = logging.getLogger(__name__)

REFRESH_S = 300.0  # real seconds between reads of the handset numbers


class HandsetLines:
    """Handset number (E.164) -> its elder and place, as last read from the registry."""

    def __init__(self) -> None:
        self._owners: dict[str, tuple[int, Place]] = {}

    def __len__(self) -> int:
        return len(self._owners)

    async def refresh(self, ctx: EngineContext) -> bool:
        """Read the handset numbers again; False (the last list kept) if the read failed."""
        read = await storage_step(ctx.sessions, handset_owners, log,
                                  "handset lines not read (the last list is kept)")
        if read.value is not None:
            self._owners = read.value
        return read.ok

    async def refresh_forever(self, ctx: EngineContext) -> None:
        await repeat(lambda: self.refresh(ctx),
                     lambda: ctx.clock.sleep(REFRESH_S * ctx.clock.speed),
                     "reading the handset lines")

    def identity(self, raw_callerid: str | None, local_area_code: str, language: str
                 ) -> CallerIdentity | None:
        """The caller as a handset's elder, if the number is a handset line (else None)."""
        number = normalize(raw_callerid, local_area_code)
        owner = self._owners.get(number) if number is not None else None
        if owner is None:
            return None
        elder_id, place = owner
        return CallerIdentity(status=CallerStatus.ELDER, number=number, elder_id=elder_id,
                              elder_name=None, language=language, relation=None,
                              handset=True, place=place)
