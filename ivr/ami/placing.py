"""One decision, shared by every caller of Originate: was the call not sent, sent with its
fate unknown, refused, or did Asterisk report an outcome?

An infrastructure fault (the AMI link down, closing, or no reply at all) is never a call
outcome: "not sent" means nothing was dialled and the call may be placed again once the
link is back; "lost" means the Originate left but its OriginateResponse did not come back
(the phone may be ringing). Only Asterisk's own answer (an OriginateResponse reason, or a
refused action) says how the call went.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ivr.logmask import masked_logger
from ivr.metrics import ORIGINATES

from .errors import AmiActionError, AmiError, AmiNotSent
from .link import AmiLink
from .messages import AmiMessage, OriginateOutcome
from .privileges import refusal

log = masked_logger("ivr.ami.placing")

NOT_SENT = "not_sent"
LOST = "lost"
REFUSED = "failed"  # Asterisk answered the action with an error: nothing dials, for real


@dataclass(frozen=True)
class Placement:
    """How one Originate went. ``status`` is ``not_sent``, ``lost``, ``failed`` (refused)
    or the OriginateResponse reason (answered, busy, no_answer, congestion, ...)."""

    status: str
    action_id: str
    outcome: OriginateOutcome | None = None
    error: str = ""

    @property
    def sent(self) -> bool:
        return self.status != NOT_SENT

    @property
    def known(self) -> bool:
        """True when Asterisk said how the call went (an outcome or a refusal)."""
        return self.status not in (NOT_SENT, LOST)

    @property
    def answered(self) -> bool:
        return self.outcome is not None and self.outcome.answered


async def place_call(ami: AmiLink | None, *, channel: str, context: str, exten: str, caller_id: str,
                     variables: Mapping[str, str], timeout_ms: int, priority: int = 1,
                     action_id: str | None = None) -> Placement:
    """Send one Originate through ``ami`` and classify what happened; never raises for a
    link fault. ValueError (a channel or variable that is not a safe header) propagates:
    bad data is the caller's to route, not a telephony outcome."""
    placed = await _place(ami, channel=channel, context=context, exten=exten,
                          caller_id=caller_id, variables=variables, timeout_ms=timeout_ms,
                          priority=priority, action_id=action_id)
    ORIGINATES.labels(context, placed.status).inc()
    return placed


async def _place(ami: AmiLink | None, *, channel: str, context: str, exten: str, caller_id: str,
                 variables: Mapping[str, str], timeout_ms: int, priority: int,
                 action_id: str | None) -> Placement:
    if ami is None:
        return Placement(NOT_SENT, action_id or "", error="no AMI link")
    action_id = action_id or ami.next_action_id()
    try:
        outcome = await ami.originate(
            channel=channel, context=context, exten=exten, priority=priority,
            caller_id=caller_id, variables=variables, timeout_ms=timeout_ms,
            action_id=action_id)
    except AmiNotSent as exc:
        return Placement(NOT_SENT, action_id, error=str(exc))
    except AmiActionError as exc:
        reply = exc.response
        message = reply.get("Message") if isinstance(reply, AmiMessage) else ""
        return Placement(REFUSED, action_id, error=refusal("Originate", message))
    except (AmiError, OSError, TimeoutError) as exc:
        log.warning("Originate %s: outcome unknown (%s)", action_id, exc)
        return Placement(LOST, action_id, error=str(exc))
    return Placement(outcome.reason_name, action_id, outcome)
