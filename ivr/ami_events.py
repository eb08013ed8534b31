"""What the engine does with AMI events: forward the dialplan's alerts and the operators'
answers to the event stream."""

from __future__ import annotations

from dispatch.console_events import CallAnswered, CallbackNeeded, Overflow, Queued
from ivr.ami.link import EventSource
from ivr.ami.messages import AmiMessage
from ivr.dialplan_contract import UserEventName
from ivr.live import LiveState

FORWARDED_USER_EVENTS: dict[str, type[Queued | Overflow | CallbackNeeded]] = {
    UserEventName.QUEUED: Queued, UserEventName.OVERFLOW: Overflow,
    UserEventName.CALLBACK_NEEDED: CallbackNeeded}


def subscribe_engine_events(ami: EventSource, live: LiveState) -> None:
    """Forward the dialplan's UserEvents about the operator queue to the console stream."""

    async def on_user_event(message: AmiMessage) -> None:
        event = FORWARDED_USER_EVENTS.get(str(message.get("UserEvent", "")))
        if event is None:
            return
        await live.publish(event(uniqueid=message.get("Uniqueid"),
                                 linkedid=message.get("Linkedid"),
                                 reason=message.get("Reason"),
                                 queue_status=message.get("Queue"), source="dialplan"))

    async def on_agent_connect(message: AmiMessage) -> None:
        """A seat answered a queued call: its card becomes that operator's."""
        await live.publish(answered_event(message))

    ami.on_event("UserEvent", on_user_event)
    ami.on_event("AgentConnect", on_agent_connect)


def seat_of(interface: str) -> str | None:
    """``PJSIP/op1001`` -> ``op1001`` (the seat an account names); None for other channels."""
    tech, sep, name = interface.partition("/")
    return name if sep and tech.upper() == "PJSIP" and name else None


def answered_event(message: AmiMessage) -> CallAnswered:
    interface = message.get("Interface")
    hold = message.get("HoldTime")
    return CallAnswered(uniqueid=message.get("Uniqueid"), linkedid=message.get("Linkedid"),
                        queue=message.get("Queue"), interface=interface,
                        seat=seat_of(interface), member=message.get("MemberName"),
                        hold_s=int(hold) if hold.isdigit() else None)
