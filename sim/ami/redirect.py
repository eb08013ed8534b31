"""The Redirect action (action_redirect in manager.c): one channel, or two at once with
ExtraChannel, sent to a dialplan location. A channel in a bridge leaves it; a channel running
dialplan goes on at the new place when its application ends; a queue member's leg (no
dialplan of its own) starts running dialplan there."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from sim.channel import Channel
from sim.interpreter import Runner

from .channel_actions import find_channel
from .framing import Request
from .originate import _int
from .session import AmiSession
from .wire import ack, error


def _priority(session: AmiSession, context: str, exten: str, text: str) -> int:
    number = _int(text)
    if number is not None:
        return number
    ext = session.factory.pbx.dialplan.find(context, exten)
    return (ext.labels.get(text) or 0) if ext is not None else 0


def _live_channel(session: AmiSession, request: Request, name: str, header: str,
                  what: str) -> Channel | None:
    """The channel to move, or None after Asterisk's error for a missing or hung-up one."""
    chan = find_channel(session, name)
    if chan is None:
        session.send(error(request, f"{header} does not exist: {name}"))
    elif chan.hungup:
        session.send(error(request, f"Redirect failed, {what} not up."))
        return None
    return chan


def action_redirect(session: AmiSession, request: Request) -> None:
    name, name2 = request.get("Channel"), request.get("ExtraChannel")
    context, context2 = request.get("Context"), request.get("ExtraContext")
    exten, exten2 = request.get("Exten"), request.get("ExtraExten")
    for value, missing in ((name, "Channel"), (context, "Context"), (exten, "Exten"),
                           (request.get("Priority"), "Priority")):
        if not value:
            session.send(error(request, f"{missing} not specified"))
            return
    priority = _priority(session, context, exten, request.get("Priority"))
    if priority < 1:
        session.send(error(request, "Priority is invalid"))
        return
    target2 = (context, exten, priority)
    if name2 and context2:
        if not exten2:
            session.send(error(request, "ExtraExten not specified"))
            return
        if not request.get("ExtraPriority"):
            session.send(error(request, "ExtraPriority not specified"))
            return
        priority2 = _priority(session, context2, exten2, request.get("ExtraPriority"))
        if priority2 < 1:
            session.send(error(request, "ExtraPriority is invalid"))
            return
        target2 = (context2, exten2, priority2)
    chan = _live_channel(session, request, name, "Channel", "channel")
    if chan is None:
        return
    moves = [(chan, (context, exten, priority))]
    if name2:
        chan2 = _live_channel(session, request, name2, "ExtraChannel", "extra channel")
        if chan2 is None:
            return
        moves.append((chan2, target2))
    _redirect(session, moves)
    session.send(ack(request, "Dual Redirect successful" if name2 else "Redirect successful"))


def _redirect(session: AmiSession, moves: list[tuple[Channel, tuple[str, str, int]]]) -> None:
    """Place every channel first, then wake them: a two-party bridge whose parties are both
    redirected (AST_FLAG_BRIDGE_DUAL_REDIRECT_WAIT) must not hang up the one still inside."""
    pbx = session.factory.pbx
    fresh = [chan for chan, target in moves if chan.prepare_goto(*target)]
    for chan, _target in moves:
        chan.wake_goto()
    for chan in fresh:
        Deferred.fromCoroutine(Runner(pbx, chan).run())
