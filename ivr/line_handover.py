"""Which waiting caring call takes an answered call's trunk line the moment it hangs up.

A caring call that has its answer still holds its line through the thank-you and the
hangup. While due rounds wait for a line, the dispatcher plans the next round's call during
that goodbye and promises it this line; at the hangup one transaction stores the hangup and
claims the promised call (``outbound.claim(freeing=...)``), so the line is idle for one
database write and one Originate, not for a read, a plan and two writes.

A promised call is an ordinary scheduled attempt, due ``HANDOVER_S`` after it was planned:
should the hangup never come (the AMI link down) or the engine die, any engine's schedule
dials it then, and the claim still keeps the trunk within its lines.
"""

from __future__ import annotations

from collections import OrderedDict

HANDOVER_S = 60.0  # engine seconds: a promised call not handed its line by then is dialled
MAX_HELD = 50_000  # answered calls remembered; beyond it the oldest is forgotten (its
# hangup then frees the line the ordinary way)


class LineHandovers:
    """Answered calls still on their line, each with the attempt promised its line (if
    any). One per engine process; every method runs on the event loop, without awaiting."""

    def __init__(self, limit: int = MAX_HELD) -> None:
        self._held: OrderedDict[int, int | None] = OrderedDict()
        self._limit = limit

    def answered(self, attempt_id: int) -> None:
        """``attempt_id`` was answered: it holds its line until its channel hangs up."""
        self._held.setdefault(attempt_id, None)
        while len(self._held) > self._limit:
            self._held.popitem(last=False)

    def holding(self, attempt_id: int) -> bool:
        """Still on its line, with no call promised it yet."""
        return attempt_id in self._held and self._held[attempt_id] is None

    def promise(self, freed: int, successor: int) -> bool:
        """Promise ``freed``'s line to ``successor``; False if it hung up meanwhile (the
        caller then dials ``successor`` the ordinary way)."""
        if freed not in self._held:
            return False
        self._held[freed] = successor
        return True

    def hung_up(self, attempt_id: int) -> int | None:
        """``attempt_id``'s channel hung up: the attempt promised its line, if any."""
        return self._held.pop(attempt_id, None)
