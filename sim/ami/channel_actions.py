"""Getvar, Setvar, Hangup, CoreShowChannels and UserEvent against the simulated PBX."""

from __future__ import annotations

import re

from sim.channel import Channel
from sim.events import channel_headers

from .events import AmiEvent
from .framing import Request
from .session import AmiSession
from .wire import ack, action_id, encode, error, list_complete, response


def find_channel(session: AmiSession, name: str) -> Channel | None:
    """The live channel called ``name`` (case-insensitive, as ast_channel_get_by_name)."""
    pbx = session.factory.pbx
    found = pbx.find_channel(name)
    if found is None:
        wanted = name.lower()
        found = next((ch for ch in pbx.channels() if ch.name.lower() == wanted), None)
    return found


def action_getvar(session: AmiSession, request: Request) -> None:
    name = request.get("Channel")
    variable = request.get("Variable")
    if not variable:
        session.send(error(request, "No variable specified"))
        return
    if ("SHELL" in variable or "EVAL" in variable) and not session.writeperm & 1:
        session.send(error(request, "GetVar Access Forbidden: Variable"))
        return
    channel = find_channel(session, name) if name else None
    if name and channel is None:
        session.send(error(request, "No such channel"))
        return
    value = session.factory.pbx.get_variable(channel.name if channel else None, variable)
    session.send(response(request, "Success", extra=[("Variable", variable),
                                                       ("Value", value or "")]))


def action_setvar(session: AmiSession, request: Request) -> None:
    name = request.get("Channel")
    variable = request.get("Variable")
    if not variable:
        session.send(error(request, "No variable specified"))
        return
    channel = find_channel(session, name) if name else None
    if name and channel is None:
        session.send(error(request, "No such channel"))
        return
    session.factory.pbx.set_variable(channel.name if channel else None, variable,
                                     request.get("Value"))
    session.send(ack(request, "Variable Set"))


def _cause(text: str) -> int:
    if text.isdigit() and 0 <= int(text) <= 127:
        return int(text)
    return 0


def action_hangup(session: AmiSession, request: Request) -> None:
    target = request.get("Channel")
    cause = _cause(request.get("Cause"))
    pbx = session.factory.pbx
    if not target:
        session.send(error(request, "No channel specified"))
        return
    if not target.startswith("/"):
        channel = find_channel(session, target)
        if channel is None:
            session.send(error(request, "No such channel"))
            return
        pbx.hangup(channel.name, cause or 16)
        session.send(ack(request, "Channel Hungup"))
        return
    if len(target) < 2 or not target.endswith("/"):
        session.send(error(request, "Regex format invalid, Channel param should be /regex/"))
        return
    try:
        pattern = re.compile(target[1:-1])
    except re.error:
        session.send(error(request, f"Regex compile failed on: {target}"))
        return
    session.send(response(request, "Success", "Channels hung up will follow", list_flag="start"))
    names = [ch.name for ch in pbx.channels() if pattern.search(ch.name)]
    for name in names:
        pbx.hangup(name, cause or 16)
        session.send(encode([("Event", "ChannelHungup"), ("Channel", name), *action_id(request)]))
    session.send(list_complete(request, "ChannelsHungupListComplete", len(names)))


def _duration(seconds: float) -> str:
    total = max(0, int(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def action_coreshowchannels(session: AmiSession, request: Request) -> None:
    session.send(response(request, "Success", "Channels will follow", list_flag="start"))
    elapsed = session.factory.elapsed()
    count = 0
    for channel in list(session.factory.pbx.channels()):
        session.send(encode([
            ("Event", "CoreShowChannel"), *action_id(request), *channel_headers(channel),
            ("Application", channel.app),
            ("ApplicationData", channel.appdata),
            ("Duration", _duration(elapsed - channel.created_at)),
            ("BridgeId", getattr(channel, "bridge_id", "") or ""),
        ]))
        count += 1
    session.send(list_complete(request, "CoreShowChannelsComplete", count))


def action_userevent(session: AmiSession, request: Request) -> None:
    # Asterisk copies every other request line verbatim into the event body.
    headers: list[tuple[str, str | None]] = [("UserEvent", request.get("UserEvent"))]
    headers += [(line, None) for line in request.lines
                if line[:10].lower() != "userevent:" and line[:7].lower() != "action:"]
    session.send(ack(request, "Event Sent"))
    session.factory.broadcast(AmiEvent.of("UserEvent", "user", headers))
