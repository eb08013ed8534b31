"""The result of one simulated call, as the control protocol and ``run`` report it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.agi.session import AgiRecord
    from sim.channel import Channel


@dataclass
class CallRecord:
    kind: str  # "inbound" | "outbound"
    apps: list[list[Any]] = field(default_factory=list)
    agi: list[AgiRecord] = field(default_factory=list)
    queue: dict[str, Any] | None = None
    dial: list[dict[str, Any]] = field(default_factory=list)
    audiosocket: list[dict[str, Any]] = field(default_factory=list)

    def result(self, chan: Channel) -> dict[str, Any]:
        party = chan.party
        return {
            "kind": self.kind,
            "channel": chan.name,
            "uniqueid": chan.uniqueid,
            "linkedid": chan.linkedid,
            "caller": party.number if party is not None and self.kind == "inbound"
            else chan.caller_num,
            "started_at": chan.created_at,
            "answered_at": chan.answered_at,
            "ended_at": chan.ended_at,
            "hangup_by": chan.hangup_by,
            "hangup_cause": chan.hangup_cause,
            "apps": self.apps,
            "agi": [rec.to_json() for rec in self.agi],
            "heard": party.heard if party is not None else [],
            "pressed": party.pressed if party is not None else [],
            "queue": self.queue,
            "dial": self.dial,
            "audiosocket": self.audiosocket,
            "variables": chan.all_vars(),
        }
