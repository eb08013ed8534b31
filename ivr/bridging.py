"""Operator bridging: 120, 110, 119 or a family member joined into the elder's call.

The elder's channel and the operator's (found by the bridge they share) are moved into a
ConfBridge room with one AMI Redirect (ExtraChannel), then the third party is originated into
the same room (``hotline-conference`` in dialplans/hotline.conf). A call already in its room
only gets the new party. Every attempt, answered or not, goes on the order's timeline.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.models import WorkOrder
from dispatch.orders import add_order_event, find_order
from dispatch.phones import mask, national
from dispatch.profile import family_contacts
from ivr.ami.errors import AmiError
from ivr.ami.placing import place_call
from ivr.config import DialSettings

log = logging.getLogger(__name__)

CONFERENCE_CONTEXT = "hotline-conference"
CONFERENCE_APP = "ConfBridge"
SERVICES = {"120": "ambulance", "110": "police", "119": "fire"}
_FAMILY = re.compile(r"^family:([1-9][0-9]?)$")
_UNIQUEID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BridgeError(Exception):
    """The bridge cannot be made; the message says why, for the operator."""


@dataclass(frozen=True)
class BridgeOutcome:
    order_no: str
    target: str
    room: str
    outcome: str  # Originate reason: answered, busy, no_answer, ...
    redirected: bool  # False when the call already was in its room


@dataclass(frozen=True)
class _Call:
    elder: str
    operator: str | None
    in_room: bool


async def bridge_call(ami: Any, sessions: async_sessionmaker[AsyncSession], dial: DialSettings,
                      call_ref: str, target: str, now: Callable[[], datetime]) -> BridgeOutcome:
    """Join ``target`` ("120", "110", "119" or "family:<n>", n-th in call order) into the call
    of order number or uniqueid ``call_ref``. Raises BridgeError."""
    async with sessions() as session:
        order = await _order(session, call_ref)
        dialstring, detail = await _dialstring(session, dial, order.elder_id, target)
    assert order.order_no is not None and order.call_uniqueid is not None
    room = re.sub(r"\D", "", order.call_uniqueid)
    call = await _channels(ami, order.call_uniqueid)
    if not call.in_room:
        if call.operator is None:
            raise BridgeError("the call is not connected to an operator")
        await _checked(ami, "Redirect", {
            "Channel": call.elder, "ExtraChannel": call.operator,
            "Context": CONFERENCE_CONTEXT, "Exten": room, "Priority": "1",
            "ExtraContext": CONFERENCE_CONTEXT, "ExtraExten": room, "ExtraPriority": "1"})
    placed = await place_call(
        ami, channel=dialstring, context=CONFERENCE_CONTEXT, exten=room,
        caller_id=dial.caller_id, variables={"HOTLINE_ORDER_ID": str(order.id)},
        timeout_ms=int(dial.ring_timeout_s * 1000))
    outcome = placed.status  # answered, busy, ..., or not_sent / lost when the link failed
    if placed.error:
        log.error("bridge of order %s to %s: %s", order.order_no, target, placed.error)
    async with sessions() as session:
        await add_order_event(session, order.id, "bridged", now(), {
            "target": target, **detail, "outcome": outcome, "room": room,
            "operator_channel": call.operator, "redirected": not call.in_room})
    return BridgeOutcome(order.order_no, target, room, outcome, not call.in_room)


async def _order(session: AsyncSession, call_ref: str) -> WorkOrder:
    order = await find_order(session, call_ref)
    if order is None and _UNIQUEID.match(call_ref) and "." in call_ref:
        order = (await session.execute(
            select(WorkOrder).where(WorkOrder.call_uniqueid == call_ref)
            .order_by(WorkOrder.id.desc()).limit(1))).scalar_one_or_none()
    if order is None:
        raise BridgeError(f"no order for {call_ref!r} (an order number or a call's uniqueid)")
    if not order.call_uniqueid:
        raise BridgeError(f"order {order.order_no} has no call to bridge into")
    return order


async def _dialstring(session: AsyncSession, dial: DialSettings, elder_id: int, target: str
                      ) -> tuple[str, dict[str, Any]]:
    if target in SERVICES:
        return getattr(dial, SERVICES[target]), {}
    match = _FAMILY.match(target)
    if match is None:
        raise BridgeError(f"unknown target {target!r}: 120, 110, 119 or family:<n>")
    contacts = await family_contacts(session, elder_id)
    index = int(match.group(1))
    if index > len(contacts):
        raise BridgeError(f"the elder has {len(contacts)} family contact(s), not {index}")
    contact = contacts[index - 1]
    log.info("bridging family contact %s (%s)", contact.id, mask(contact.number))
    return dial.family.format(number=national(contact.number)), {"contact_id": contact.id}


async def _channels(ami: Any, uniqueid: str) -> _Call:
    """The elder's channel and the operator's, from CoreShowChannels."""
    try:
        listing = await ami.action("CoreShowChannels")
    except AmiError as exc:
        raise BridgeError(f"Asterisk unavailable: {exc}") from exc
    items = [m for m in listing if m.get("Event") == "CoreShowChannel"] \
        if isinstance(listing, list) else []
    elder = next((m for m in items if m.get("Uniqueid") == uniqueid), None)
    if elder is None:
        raise BridgeError("the call has ended")
    if elder.get("Application") == CONFERENCE_APP:
        return _Call(elder.get("Channel"), None, in_room=True)
    bridge = elder.get("BridgeId")
    peer = next((m for m in items if bridge and m.get("BridgeId") == bridge
                 and m.get("Uniqueid") != uniqueid), None)
    return _Call(elder.get("Channel"), peer.get("Channel") if peer else None, in_room=False)


async def _checked(ami: Any, action: str, headers: dict[str, str]) -> None:
    try:
        reply = await ami.action(action, headers)
    except (AmiError, ValueError) as exc:
        raise BridgeError(f"{action} not sent: {exc}") from exc
    if isinstance(reply, list) or reply.get("Response") != "Success":
        message = reply.get("Message") if not isinstance(reply, list) else "a list"
        raise BridgeError(f"{action} refused: {message}")
