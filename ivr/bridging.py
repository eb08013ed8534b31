"""Operator bridging: 120, 110, 119 or a family member joined into the elder's call.

The elder's channel and the operator's (found by the bridge they share) are moved into a
ConfBridge room with one AMI Redirect (ExtraChannel), then the third party is originated into
the same room (``hotline-conference`` in dialplans/hotline.conf). A call already in its room
only gets the new party. Every attempt, answered, unanswered or failed (Asterisk down, an
action refused, the call gone), goes on the order's timeline once the order is known.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from dispatch.models import WorkOrder
from dispatch.orders import add_order_event, find_order, latest_order_of_call
from dispatch.phones import mask, national
from dispatch.profile import family_contacts
from ivr.ami.errors import AmiError
from ivr.ami.link import AmiLink
from ivr.ami.placing import place_call
from ivr.ami.privileges import refusal
from ivr.config import DialSettings, Settings
from ivr.dialplan_contract import ChannelVar, Context

log = logging.getLogger(__name__)

CONFERENCE_CONTEXT = Context.CONFERENCE
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


async def bridge_call(ami: AmiLink, sessions: async_sessionmaker[AsyncSession], dial: DialSettings,
                      call_ref: str, target: str, now: Callable[[], datetime], *,
                      unavailable: str | None = None) -> BridgeOutcome:
    """Join ``target`` ("120", "110", "119" or "family:<n>", n-th in call order) into the call
    of order number or uniqueid ``call_ref``. ``unavailable`` says why AMI could not be
    reached, if it could not. Raises BridgeError, after recording the failure on the order's
    timeline when the order was found."""
    async with sessions() as session:
        order = await _order(session, call_ref)
    assert order.order_no is not None
    room = re.sub(r"\D", "", order.call_uniqueid or "")
    try:
        if not order.call_uniqueid:
            raise BridgeError(f"order {order.order_no} has no call to bridge into")
        async with sessions() as session:
            dialstring, detail = await _dialstring(session, dial, order.elder_id, target)
        if unavailable is not None:
            raise BridgeError(f"Asterisk unavailable: {unavailable}")
        call = await _channels(ami, order.call_uniqueid)
        if not call.in_room:
            if call.operator is None:
                raise BridgeError("the call is not connected to an operator")
            await _checked(ami, "Redirect", {
                "Channel": call.elder, "ExtraChannel": call.operator,
                "Context": CONFERENCE_CONTEXT, "Exten": room, "Priority": "1",
                "ExtraContext": CONFERENCE_CONTEXT, "ExtraExten": room, "ExtraPriority": "1"})
    except BridgeError as exc:
        log.error("bridge of order %s to %s failed: %s", order.order_no, target, exc)
        await _record(sessions, order.id, now(), {
            "target": target, "outcome": "failed", "error": str(exc), "room": room})
        raise
    placed = await place_call(
        ami, channel=dialstring, context=CONFERENCE_CONTEXT, exten=room,
        caller_id=dial.caller_id, variables={ChannelVar.ORDER_ID: str(order.id)},
        timeout_ms=int(dial.ring_timeout_s * 1000))
    outcome = placed.status  # answered, busy, ..., failed (refused), not_sent / lost (link)
    error = placed.error or None
    if error is not None:
        log.error("bridge of order %s to %s failed: %s", order.order_no, target, error)
    await _record(sessions, order.id, now(), {
        "target": target, **detail, "outcome": outcome, "room": room,
        "operator_channel": call.operator, "redirected": not call.in_room,
        **({"error": error} if error else {})})
    return BridgeOutcome(order.order_no, target, room, outcome, not call.in_room)


async def _record(sessions: async_sessionmaker[AsyncSession], order_id: int, at: datetime,
                  detail: dict[str, Any]) -> None:
    """One ``bridged`` event on the order's timeline."""
    async with sessions() as session:
        await add_order_event(session, order_id, "bridged", at, detail)


async def _order(session: AsyncSession, call_ref: str) -> WorkOrder:
    order = await find_order(session, call_ref)
    if order is None and _UNIQUEID.match(call_ref) and "." in call_ref:
        order = await latest_order_of_call(session, call_ref)
    if order is None:
        raise BridgeError(f"no order for {call_ref!r} (an order number or a call's uniqueid)")
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


async def _channels(ami: AmiLink, uniqueid: str) -> _Call:
    """The elder's channel and the operator's, from CoreShowChannels."""
    try:
        listing = await ami.action("CoreShowChannels")
    except AmiError as exc:
        raise BridgeError(f"Asterisk unavailable: {exc}") from exc
    if not isinstance(listing, list):  # an Error response instead of the event list
        raise BridgeError(refusal("CoreShowChannels", listing.get("Message")))
    items = [m for m in listing if m.get("Event") == "CoreShowChannel"]
    elder = next((m for m in items if m.get("Uniqueid") == uniqueid), None)
    if elder is None:
        raise BridgeError("the call has ended")
    if elder.get("Application") == CONFERENCE_APP:
        return _Call(elder.get("Channel"), None, in_room=True)
    bridge = elder.get("BridgeId")
    peer = next((m for m in items if bridge and m.get("BridgeId") == bridge
                 and m.get("Uniqueid") != uniqueid), None)
    return _Call(elder.get("Channel"), peer.get("Channel") if peer else None, in_room=False)


async def _checked(ami: AmiLink, action: str, headers: dict[str, str]) -> None:
    try:
        reply = await ami.action(action, headers)
    except (AmiError, ValueError) as exc:
        raise BridgeError(f"{action} not sent: {exc}") from exc
    if isinstance(reply, list):
        raise BridgeError(f"{action} answered with an event list")
    if reply.get("Response") != "Success":
        raise BridgeError(refusal(action, reply.get("Message")))


@dataclass
class OneShotLink:
    """An AMI link opened for one console or command-line action, and its database."""

    ami: AmiLink
    sessions: async_sessionmaker[AsyncSession]
    unavailable: str | None  # why Asterisk is out of reach, if it is


@contextlib.asynccontextmanager
async def one_shot_link(settings: Settings,
                        sessions: async_sessionmaker[AsyncSession] | None = None
                        ) -> AsyncIterator[OneShotLink]:
    """A fresh AMI link for one action (``hotline bridge``, ``hotline call``, the console):
    connect, yield, close. Asterisk out of reach is yielded as ``unavailable`` for the action
    to record. ``sessions`` (the caller's database) or a short-lived engine on
    settings.database."""
    from dispatch.db import async_sessionmaker_for, make_async_engine
    from ivr.ami.client import AmiClient

    engine = make_async_engine(settings.database.url, pool_size=1) if sessions is None else None
    ami = AmiClient(settings.ami)
    unavailable: str | None = None
    try:
        try:
            await ami.start()
            await ami.wait_connected(settings.ami.ping_timeout_s)
        except AmiError as exc:
            unavailable = str(exc)
        yield OneShotLink(ami, sessions or async_sessionmaker_for(engine), unavailable)
    finally:
        await ami.close()
        if engine is not None:
            await engine.dispose()


async def bridge_once(settings: Settings, call_ref: str, target: str,
                      sessions: async_sessionmaker[AsyncSession] | None = None) -> BridgeOutcome:
    """One bridge on a fresh AMI link (``hotline bridge`` and the console). Asterisk out of
    reach is still recorded on the order's timeline by bridge_call."""
    async with one_shot_link(settings, sessions) as link:
        return await bridge_call(link.ami, link.sessions, settings.dial, call_ref, target,
                                 lambda: datetime.now(UTC), unavailable=link.unavailable)
