"""What the engine does with AMI events: forward the dialplan's alerts to the event stream."""

from __future__ import annotations

from dispatch.console_events import CallbackNeeded, Overflow, Queued
from ivr.ami.link import AmiLink
from ivr.ami.messages import AmiMessage
from ivr.dialplan_contract import UserEventName
from ivr.live import LiveState

FORWARDED_USER_EVENTS: dict[str, type[Queued | Overflow | CallbackNeeded]] = {
    UserEventName.QUEUED: Queued, UserEventName.OVERFLOW: Overflow,
    UserEventName.CALLBACK_NEEDED: CallbackNeeded}


def subscribe_engine_events(ami: AmiLink, live: LiveState) -> None:
    """Forward the dialplan's UserEvents about the operator queue to the console stream."""

    async def on_user_event(message: AmiMessage) -> None:
        event = FORWARDED_USER_EVENTS.get(str(message.get("UserEvent", "")))
        if event is None:
            return
        await live.publish(event(uniqueid=message.get("Uniqueid"),
                                 linkedid=message.get("Linkedid"),
                                 reason=message.get("Reason"),
                                 queue_status=message.get("Queue"), source="dialplan"))

    ami.on_event("UserEvent", on_user_event)
