"""AMI events: an event bus and builders that reproduce Asterisk 22's header order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.channel import Channel

log = logging.getLogger(__name__)

CALL = "call,all"
DIALPLAN = "dialplan,all"
AGI = "agi,all"
DTMF = "dtmf,all"
USER = "user,all"
AGENT = "agent,all"

CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    27: "Destination out of order",
    34: "Circuit/channel congestion",
    38: "Network out of order",
}


@dataclass
class Event:
    """One AMI event. ``privilege`` is the value of the Privilege header, e.g. ``call,all``."""

    name: str
    privilege: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        for name, value in self.headers:
            if name == key:
                return value
        return None


class EventBus:
    """Synchronous fan-out of events; a failing subscriber is logged and kept."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Event], None]] = []

    @property
    def active(self) -> bool:
        """False when nobody listens: callers may skip building events."""
        return bool(self._subscribers)

    def subscribe(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        self._subscribers.append(fn)

        def unsubscribe() -> None:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

        return unsubscribe

    def publish(self, event: Event) -> None:
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.name)


_ESCAPES = str.maketrans({
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v", "\\": "\\\\", "'": "\\'", '"': '\\"', "?": "\\?",
})


def escape_c(value: str) -> str:
    """Escape control characters as Asterisk's ast_escape_c does for caller names and VarSet."""
    return value.translate(_ESCAPES)


def _unknown(value: str) -> str:
    return value if value else "<unknown>"


def channel_headers(ch: Channel, prefix: str = "") -> list[tuple[str, str]]:
    """The channel snapshot block Asterisk puts in every channel event."""
    return [
        (f"{prefix}Channel", ch.name),
        (f"{prefix}ChannelState", str(int(ch.state))),
        (f"{prefix}ChannelStateDesc", ch.state.desc),
        (f"{prefix}CallerIDNum", _unknown(ch.caller_num)),
        (f"{prefix}CallerIDName", _unknown(escape_c(ch.caller_name))),
        (f"{prefix}ConnectedLineNum", _unknown(ch.connected_num)),
        (f"{prefix}ConnectedLineName", _unknown(escape_c(ch.connected_name))),
        (f"{prefix}Language", ch.language),
        (f"{prefix}AccountCode", ch.accountcode),
        (f"{prefix}Context", ch.context),
        (f"{prefix}Exten", ch.exten),
        (f"{prefix}Priority", str(ch.priority)),
        (f"{prefix}Uniqueid", ch.uniqueid),
        (f"{prefix}Linkedid", ch.linkedid),
    ]


def channel_event(name: str, privilege: str, ch: Channel, *extra: tuple[str, str]) -> Event:
    return Event(name, privilege, [*channel_headers(ch), *extra])


def two_channel_event(
    name: str, privilege: str, ch: Channel | None, dest: Channel, *extra: tuple[str, str]
) -> Event:
    headers = channel_headers(ch) if ch is not None else []
    return Event(name, privilege, [*headers, *channel_headers(dest, "Dest"), *extra])


def newexten(ch: Channel, app: str, data: str) -> Event:
    return channel_event(
        "Newexten", DIALPLAN, ch, ("Extension", ch.exten), ("Application", app), ("AppData", data)
    )


def varset(ch: Channel, name: str, value: str) -> Event:
    return channel_event("VarSet", DIALPLAN, ch, ("Variable", name), ("Value", escape_c(value)))


def hangup(ch: Channel, cause: int) -> Event:
    return channel_event(
        "Hangup", CALL, ch, ("Cause", str(cause)), ("Cause-txt", CAUSE_TEXT.get(cause, "Unknown"))
    )


def hangup_request(ch: Channel, cause: int, soft: bool) -> Event:
    name = "SoftHangupRequest" if soft else "HangupRequest"
    return channel_event(name, CALL, ch, ("Cause", str(cause)))


def dtmf(ch: Channel, digit: str, end: bool, direction: str = "Received") -> Event:
    if end:
        return channel_event(
            "DTMFEnd", DTMF, ch, ("Digit", digit), ("DurationMs", "100"), ("Direction", direction)
        )
    return channel_event("DTMFBegin", DTMF, ch, ("Digit", digit), ("Direction", direction))


def new_callerid(ch: Channel) -> Event:
    return channel_event(
        "NewCallerid", CALL, ch, ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
    )


def local_bridge(one: Channel, two: Channel) -> Event:
    headers = [*channel_headers(one, "LocalOne"), *channel_headers(two, "LocalTwo")]
    headers += [("Context", two.context), ("Exten", two.exten), ("LocalOptimization", "No")]
    return Event("LocalBridge", CALL, headers)


def device_state(device: str, state: str) -> Event:
    return Event("DeviceStateChange", CALL, [("Device", device), ("State", state)])


def bridge_headers(bridge_id: str, count: int) -> list[tuple[str, str]]:
    return [
        ("BridgeUniqueid", bridge_id),
        ("BridgeType", "basic"),
        ("BridgeTechnology", "simple_bridge"),
        ("BridgeCreator", "<unknown>"),
        ("BridgeName", "<unknown>"),
        ("BridgeNumChannels", str(count)),
        ("BridgeVideoSourceMode", "none"),
    ]


def bridge_event(name: str, bridge_id: str, count: int, ch: Channel | None = None) -> Event:
    headers = bridge_headers(bridge_id, count)
    if ch is not None:
        headers += channel_headers(ch)
    return Event(name, CALL, headers)
