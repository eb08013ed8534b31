"""ConfBridge(conference[,bridge_profile[,user_profile[,menu]]]): a named conference room.

The first user creates the room (ConfbridgeStart), each user joins (ConfbridgeJoin) and stays
until they hang up or are redirected (ConfbridgeLeave); the last one out ends the room
(ConfbridgeEnd). CONFBRIDGE_RESULT is set on leaving, as app_confbridge does.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from sim import events as ev
from sim.apps.registry import AppContext, application
from sim.channel import Channel, State
from sim.dialplan.args import split_args

log = logging.getLogger(__name__)


@dataclass
class Room:
    name: str
    bridge_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    members: list[Channel] = field(default_factory=list)


def _event(name: str, room: Room, chan: Channel | None) -> ev.Event:
    headers = [("Conference", room.name), ("BridgeUniqueid", room.bridge_id),
               ("BridgeType", "base"), ("BridgeTechnology", "softmix"),
               ("BridgeCreator", "ConfBridge"), ("BridgeName", room.name),
               ("BridgeNumChannels", str(len(room.members))), ("BridgeVideoSourceMode", "none")]
    if chan is None:
        return ev.Event(name, ev.CALL, headers)
    return ev.channel_event(name, ev.CALL, chan, *headers, ("Admin", "No"), ("Marked", "No"),
                            ("Muted", "No"), ("Talking", "No"))


@application("ConfBridge")
async def confbridge(ctx: AppContext, data: str) -> int:
    name = [*split_args(data), ""][0].strip()
    chan, pbx = ctx.chan, ctx.pbx
    if not name:
        log.warning("ConfBridge requires an argument (the conference name)")
        return -1
    if chan.hungup:
        return -1
    if chan.state != State.UP:
        chan.answer()
    room = pbx.conferences.get(name)
    if room is None:
        room = pbx.conferences[name] = Room(name)
        pbx.events.publish(_event("ConfbridgeStart", room, None))
    room.members.append(chan)
    chan.bridge_id = room.bridge_id
    chan.emit(_event("ConfbridgeJoin", room, chan))
    win = chan.window(opportunity=False)
    try:
        res = await win.wait(None)
    finally:
        win.close()
    room.members.remove(chan)
    chan.bridge_id = ""
    chan.emit(_event("ConfbridgeLeave", room, chan))
    if not room.members:
        pbx.conferences.pop(name, None)
        pbx.events.publish(_event("ConfbridgeEnd", room, None))
    chan.set_var("CONFBRIDGE_RESULT", "HANGUP" if res.kind == "hangup" else "KICKED")
    return -1 if res.kind == "hangup" else 0
