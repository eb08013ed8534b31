"""The one-key handset lines, known without the database.

A handset call is an emergency before anything else. The engine keeps every handset number
with its registry matches in memory, read at start and every ``REFRESH_S``, and a handset
caller is identified from there: the call reaches the operator queue without waiting for the
registry, which on a disaster minute is busy with thousands of other calls (and may be
restarting, unreachable or locked). The caller is the one ``identify`` would find, as of the
last read: a handset registered or moved since then is found through the registry (the
flow's next step) within ``REFRESH_S``. Its order is stored meanwhile, or once the database
is back (``ivr/emergency_orders.py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from dispatch.phones import normalize
from dispatch.registry import CallerIdentity, RegistryMatch, handset_matches, identity_of
from ivr.periodic import repeat
from ivr.storage_steps import storage_step

if TYPE_CHECKING:
    from ivr.context import EngineContext

log = logging.getLogger(__name__)

REFRESH_S = 300.0  # real seconds between reads of the handset numbers


class HandsetLines:
    """Handset number (E.164) -> its registry matches, as last read."""

    def __init__(self) -> None:
        self._owners: dict[str, list[RegistryMatch]] = {}

    def __len__(self) -> int:
        return len(self._owners)

    async def refresh(self, ctx: EngineContext) -> bool:
        """Read the handset numbers again; False (the last list kept) if the read failed."""
        read = await storage_step(ctx.sessions, handset_matches, log,
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
        """The caller as ``identify`` found them at the last read, if the number is a
        handset line (else None); ``language``: for an elder without one of their own."""
        return self.identity_of_number(normalize(raw_callerid, local_area_code), language)

    def identity_of_number(self, number: str | None, language: str) -> CallerIdentity | None:
        """``identity`` of a number already normalised (None: withheld)."""
        matches = self._owners.get(number) if number is not None else None
        if number is None or matches is None:
            return None
        return identity_of(number, matches, language)
