"""Click-to-call: an operator calls an elder back from the console or ``hotline call``.

One AMI Originate rings the operator's own softphone (``PJSIP/<seat>``) first; once the
operator answers, the seat's channel runs ``[hotline-seat-dial]`` with the elder's digits as
its extension, so the engine's ``seat_dial`` check (registry numbers, 120/110/119 only)
decides, exactly as if the operator had dialled by hand. The number is checked to be plain
digits and normalised before anything reaches AMI. Every attempt and its outcome goes on the
order's timeline (``called_back``) when there is an order, and on the audit log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.audit import Actor, audit_row
from dispatch.hotpath import write_transaction
from dispatch.orders import find_order, order_event
from dispatch.phones import mask, normalize
from dispatch.seat_calls import trunk_digits
from ivr.ami.link import AmiLink
from ivr.ami.placing import NOT_SENT, place_call
from ivr.bridging import one_shot_link
from ivr.config import Settings
from ivr.dialplan_contract import ChannelVar, Context

log = logging.getLogger(__name__)

EVENT_KIND = "called_back"
AUDIT_ACTION = "call_back"
SEAT_CONTEXT = Context.SEAT_DIAL
CALLER_NAME = "12349 call-back"
RUNG, FAILED, UNREACHABLE = "rung", "failed", "ami_unreachable"
_NUMBER = re.compile(r"\+?[0-9]{3,20}")
_SEAT = re.compile(r"[A-Za-z0-9_.-]{1,40}")


class CallBackError(Exception):
    """The call cannot be placed; the message says why, for the operator."""


@dataclass(frozen=True)
class CallBack:
    seat: str
    number: str  # masked, for display and logs
    order_no: str | None
    outcome: str  # rung (the seat answered, the elder is being dialled), failed, ami_unreachable
    status: str  # the Originate's: answered, busy, no_answer, failed, not_sent, lost
    error: str = ""


def seat_exten(number: str, local_area_code: str) -> str:
    """The digits the seat dials for ``number``: plain digits (an optional leading +) only,
    normalised; CallBackError for anything else, dial-string syntax included."""
    if not _NUMBER.fullmatch(number):
        raise CallBackError("the number must be plain digits")
    e164 = normalize(number, local_area_code)
    if e164 is None:
        raise CallBackError("not a valid phone number")
    return trunk_digits(e164)


def blocked_reason(seat: str | None, ami_enabled: bool) -> str | None:
    """Why an account with this seat cannot call back, or None when it can."""
    if not seat:
        return "Your account has no softphone seat (hotline user --seat)."
    if not ami_enabled:
        return "AMI is off in this console's configuration."
    return None


def checked_seat(seat: str | None) -> str:
    if not seat:
        raise CallBackError("this account has no softphone seat")
    if not _SEAT.fullmatch(seat):
        raise CallBackError("the seat is not a plain PJSIP endpoint name")
    return seat


def _outcome(status: str, unavailable: str | None) -> str:
    if unavailable is not None or status == NOT_SENT:
        return UNREACHABLE
    return RUNG if status == "answered" else FAILED


async def call_back(ami: AmiLink | None, sessions: async_sessionmaker[AsyncSession],
                    settings: Settings, actor: Actor, seat: str | None, number: str,
                    order_no: str | None, now: Callable[[], datetime], *,
                    unavailable: str | None = None) -> CallBack:
    """Ring ``seat``, then the elder's ``number`` through the seat-dial check. ``unavailable``
    says why AMI could not be reached, if it could not. Raises CallBackError before AMI for
    a bad seat, number or order; every placed attempt is recorded."""
    seat = checked_seat(seat)
    exten = seat_exten(number, settings.ivr.local_area_code)
    order_id: int | None = None
    if order_no is not None:
        async with sessions() as session:
            order = await find_order(session, order_no)
        if order is None:
            raise CallBackError(f"no order {order_no[:32]!r}")
        order_id = order.id
    variables = {ChannelVar.ORDER_ID: str(order_id)} if order_id is not None else {}
    if unavailable is None:
        placed = await place_call(
            ami, channel=f"PJSIP/{seat}", context=SEAT_CONTEXT, exten=exten,
            caller_id=f'"{CALLER_NAME}" <{exten}>', variables=variables,
            timeout_ms=int(settings.dial.ring_timeout_s * 1000))
        status, error = placed.status, placed.error
    else:
        status, error = NOT_SENT, f"Asterisk unavailable: {unavailable}"
    result = CallBack(seat, mask(exten), order_no, _outcome(status, unavailable), status, error)
    log.info("call-back from seat %s to %s: %s (%s)", seat, result.number, result.outcome, status)
    await _record(sessions, actor, order_id, now(), result)
    return result


async def _record(sessions: async_sessionmaker[AsyncSession], actor: Actor,
                  order_id: int | None, at: datetime, result: CallBack) -> None:
    """The audit row and, with an order, its ``called_back`` event, in one transaction."""
    detail: dict[str, Any] = {"seat": result.seat, "number": result.number,
                              "outcome": result.outcome, "status": result.status,
                              **({"error": result.error} if result.error else {})}
    audit = audit_row(actor, AUDIT_ACTION, at, result.order_no or result.number, detail)
    then = () if order_id is None else (order_event(order_id, EVENT_KIND, at, detail),)
    async with sessions() as session:
        await write_transaction(session, audit, lambda _row: then)


async def call_back_once(settings: Settings, actor: Actor, seat: str | None, number: str,
                         order_no: str | None = None,
                         sessions: async_sessionmaker[AsyncSession] | None = None) -> CallBack:
    """One call-back on a fresh AMI link (``hotline call`` and the console)."""
    checked_seat(seat)
    seat_exten(number, settings.ivr.local_area_code)  # refused before any connection
    async with one_shot_link(settings, sessions) as link:
        return await call_back(link.ami, link.sessions, settings, actor, seat, number,
                               order_no, lambda: datetime.now(UTC),
                               unavailable=link.unavailable)
