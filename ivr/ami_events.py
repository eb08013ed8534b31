"""What the engine does with AMI events: forward the dialplan's alerts to the event stream."""

from __future__ import annotations

from ivr.ami.link import AmiLink
from ivr.ami.messages import AmiMessage
from ivr.dialplan_contract import UserEventName
from ivr.live import LiveState

FORWARDED_USER_EVENTS = {UserEventName.QUEUED: "queued", UserEventName.OVERFLOW: "overflow",
                         UserEventName.CALLBACK_NEEDED: "callback_needed"}


def subscribe_engine_events(ami: AmiLink, live: LiveState) -> None:
    """Forward the dialplan's UserEvents about the operator queue to the console stream."""

    async def on_user_event(message: AmiMessage) -> None:
        kind = FORWARDED_USER_EVENTS.get(str(message.get("UserEvent", "")))
        if kind is None:
            return
        await live.publish(
            kind,
            {
                "uniqueid": message.get("Uniqueid"),
                "linkedid": message.get("Linkedid"),
                "reason": message.get("Reason"),
                "queue_status": message.get("Queue"),
                "source": "dialplan",
            },
        )

    ami.on_event("UserEvent", on_user_event)
