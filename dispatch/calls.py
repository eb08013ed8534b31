"""Call records: one row per Asterisk channel (uniqueid), written when the call ends."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.driver_batch import batchable
from dispatch.hotpath import write_transaction
from dispatch.models import Call

__all__ = [
    "CallDisposition",
    "CallReason",
    "record_call",
]


class CallDisposition(StrEnum):
    """How a 12349 call ended for the engine."""

    ORDER = "order"  # an order committed and read back (the reason is its service)
    OPERATOR = "operator"  # routed to a human (the reason says why)
    ABANDONED = "abandoned"  # the caller hung up first
    MESSAGE = "message"  # outside the operators' hours: sent to leave a message


class CallReason(StrEnum):
    """Why a call went to a human, or why it was abandoned (the HOTLINE_REASON value)."""

    UNKNOWN_CALLER = "unknown_caller"
    WITHHELD_NUMBER = "withheld_number"
    HANDSET_EMERGENCY = "handset_emergency"
    CALLER_EMERGENCY = "caller_emergency"
    NO_MENU_ELDER = "no_menu_elder"
    CALLER_REQUEST = "caller_request"
    NO_INPUT = "no_input"
    INVALID_INPUT = "invalid_input"
    SPEECH_NOT_UNDERSTOOD = "speech_not_understood"
    UNDECIDED = "undecided"
    REGISTRY_UNAVAILABLE = "registry_unavailable"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    HANGUP_BEFORE_ORDER = "hangup_before_order"
    CALLBACK_NEEDED = "callback_needed"  # abandoned, and an operator is to call back
    CARE_HELP = "care_help"  # pressed 2 on a check-in call: an operator is to call back
    CARE_OPERATOR = "care_operator"  # pressed 0 on a caring call: to the operators
    UNKNOWN_SCRIPT = "unknown_script"
    ENGINE_SHUTDOWN = "engine_shutdown"
    ENGINE_ERROR = "engine_error"


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


async def record_call(
    session: AsyncSession,
    *,
    uniqueid: str,
    linkedid: str | None,
    channel: str,
    direction: str,
    caller_number: str | None,
    identity_status: str,
    elder_id: int | None,
    started_at: datetime,
    ended_at: datetime,
    disposition: CallDisposition,
    reason: str | None,  # a CallReason, or the ordered service
    order_id: int | None = None,
    answered_at: datetime | None = None,
    order_announced_at: datetime | None = None,
) -> None:
    """Store a finished call in one statement and COMMIT (the call path's single write).

    A record already stored for ``uniqueid`` (a retried AGI session) is left as it is.
    """
    params = {
        "uniqueid": uniqueid[:64],
        "linkedid": _clip(linkedid, 64),
        "channel": channel[:128],
        "direction": direction[:16],
        "caller_number": _clip(caller_number, 20),
        "identity_status": str(identity_status)[:16],
        "elder_id": elder_id,
        "started_at": started_at,
        "answered_at": answered_at,
        "order_announced_at": order_announced_at,
        "ended_at": ended_at,
        "disposition": str(disposition)[:24],
        "reason": _clip(reason and str(reason), 32),
        "order_id": order_id,
    }
    try:
        await write_transaction(session, (_INSERT_CALL, params))
    except IntegrityError:
        if await session.scalar(select(Call.id).where(Call.uniqueid == uniqueid[:64])) is None:
            raise


_INSERT_CALL = batchable(insert(Call).values(
    {name: bindparam(name) for name in (
        "uniqueid", "linkedid", "channel", "direction", "caller_number", "identity_status",
        "elder_id", "started_at", "answered_at", "order_announced_at", "ended_at",
        "disposition", "reason", "order_id",
    )}
))


async def link_call_to_order(session: AsyncSession, uniqueid: str, order_id: int) -> None:
    """Point ``uniqueid``'s call record at ``order_id`` if it names no order yet; COMMITs."""
    await write_transaction(session, (_LINK_ORDER, {"uid": uniqueid[:64], "order": order_id}))


_LINK_ORDER = (update(Call).where(Call.uniqueid == bindparam("uid"), Call.order_id.is_(None))
               .values(order_id=bindparam("order")))
