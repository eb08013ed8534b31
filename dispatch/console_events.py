"""The events of the consoles' stream: every name and its payload, written once.

The engine (and the domain code that commits outbox rows with its state) builds one of the
models below; the stream entry is ``{"type": name, "data": JSON payload, "outbox_id"?}``.
A console reads an entry back with :func:`parse_entry`, which raises
:class:`ConsoleEventError` (never anything else) for an unknown name or a bad payload.
Every event about an elder carries the elder's region as ``place`` (a
:class:`~dispatch.regions.Place`, all codes None when the elder is unknown), so a console
filters by the same rule as its pages (:meth:`~dispatch.regions.RegionScope.covers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from dispatch.regions import Place


class ConsoleEventName(StrEnum):
    CALL_STARTED = "call_started"
    CALL_ENDED = "call_ended"
    SCREEN_POP = "screen_pop"
    QUEUED = "queued"
    OVERFLOW = "overflow"
    CALLBACK_NEEDED = "callback_needed"
    ORDER_CREATED = "order_created"
    ORDER_ACCEPTED = "order_accepted"
    ORDER_ARRIVED = "order_arrived"
    ORDER_COMPLETED = "order_completed"
    DISPATCH_ESCALATED = "dispatch_escalated"
    ALERT = "alert"
    COMPLAINT_OPENED = "complaint_opened"
    EMERGENCY_OPEN = "emergency_open"
    FAMILY_ACKNOWLEDGED = "family_acknowledged"
    FAMILY_NO_KEY = "family_no_key"
    FAMILY_UNREACHED = "family_unreached"
    ALARM_EMERGENCY = "alarm_emergency"
    ALARM_ALERT = "alarm_alert"
    SPOOLED_EMERGENCY = "spooled_emergency"
    SPOOLED_UNKNOWN_CALLER = "spooled_unknown_caller"
    PBX_CHECK = "pbx_check"
    CALL_ANSWERED = "call_answered"
    QUEUE_ABANDONED = "queue_abandoned"
    ALARM_ACKNOWLEDGED = "alarm_acknowledged"
    MESSAGE_LEFT = "message_left"


class ConsoleEventError(ValueError):
    """A stream entry or outbox row that is not a known, well-formed console event."""


class ConsoleEvent(BaseModel):
    """One event; subclasses set ``name`` and declare the payload's fields."""

    # a field this version does not know (a newer engine's) is ignored, never an error
    model_config = ConfigDict(frozen=True, extra="ignore")
    name: ClassVar[ConsoleEventName]
    # a caller on the line waits for this event (its outbox row goes before background work)
    caller_waits: ClassVar[bool] = False

    def payload(self) -> dict[str, Any]:
        """The payload as JSON types (what the outbox row stores)."""
        return self.model_dump(mode="json")

    def data(self) -> str:
        """The payload as the stream's ``data`` field."""
        return self.model_dump_json()


class _AboutElder(ConsoleEvent):
    place: Place = Place()


class CallStarted(_AboutElder):
    name = ConsoleEventName.CALL_STARTED
    uniqueid: str
    channel: str | None = None
    status: str
    elder_id: int | None = None
    caller: str | None = None  # masked


class CallEnded(ConsoleEvent):
    name = ConsoleEventName.CALL_ENDED
    uniqueid: str
    disposition: str | None = None
    reason: str | None = None


class ScreenPop(_AboutElder):
    name = ConsoleEventName.SCREEN_POP
    caller_waits = True  # published before the caller may go on to the queue
    uniqueid: str
    linkedid: str | None = None
    reason: str
    priority: int
    caller: str | None = None
    caller_status: str
    relation: str | None = None
    order_no: str | None = None
    profile: dict[str, Any] | None = None
    household: list[dict[str, Any] | None] = []


class _FromDialplan(ConsoleEvent):
    uniqueid: str | None = None
    linkedid: str | None = None
    reason: str | None = None
    queue_status: str | None = None
    source: str = "dialplan"


class Queued(_FromDialplan):
    name = ConsoleEventName.QUEUED


class Overflow(_FromDialplan):
    name = ConsoleEventName.OVERFLOW


class CallbackNeeded(_FromDialplan):
    """From the dialplan (queue left unanswered) or the engine (a known caller hung up)."""

    name = ConsoleEventName.CALLBACK_NEEDED
    source: str = "engine"
    elder_id: int | None = None
    number: str | None = None
    place: Place = Place()


class OrderCreated(_AboutElder):
    name = ConsoleEventName.ORDER_CREATED
    order_no: str
    service: str
    elder_id: int
    source: str
    uniqueid: str | None = None


class OrderAccepted(_AboutElder):
    name = ConsoleEventName.ORDER_ACCEPTED
    order_id: int
    order_no: str
    vendor_id: int


class OrderArrived(_AboutElder):
    name = ConsoleEventName.ORDER_ARRIVED
    order_id: int
    order_no: str
    worker_id: int


class OrderCompleted(_AboutElder):
    name = ConsoleEventName.ORDER_COMPLETED
    order_id: int
    order_no: str
    worker_id: int


class DispatchEscalated(_AboutElder):
    name = ConsoleEventName.DISPATCH_ESCALATED
    order_id: int
    reason: str


class Alert(_AboutElder):
    """An order overdue at one step (``kind``: late_acceptance, late_arrival, ...)."""

    name = ConsoleEventName.ALERT
    kind: str
    order_id: int
    order_no: str
    vendor_id: int | None = None


class ComplaintOpened(_AboutElder):
    name = ConsoleEventName.COMPLAINT_OPENED
    order_id: int
    rating: int


class EmergencyOpen(_AboutElder):
    name = ConsoleEventName.EMERGENCY_OPEN
    order_no: str
    order_id: int
    elder_id: int
    elder: str
    age_s: int
    attempts: int
    last_outcome: str | None = None


class FamilyAcknowledged(_AboutElder):
    name = ConsoleEventName.FAMILY_ACKNOWLEDGED
    order_id: int
    contact_id: int


class FamilyNoKey(_AboutElder):
    name = ConsoleEventName.FAMILY_NO_KEY
    order_id: int
    contact_id: int


class FamilyUnreached(_AboutElder):
    name = ConsoleEventName.FAMILY_UNREACHED
    order_id: int


class AlarmEmergency(_AboutElder):
    name = ConsoleEventName.ALARM_EMERGENCY
    order_no: str
    elder_id: int
    kinds: list[str]


class AlarmAlertEvent(_AboutElder):
    """``reason``: unidentified_alarm, device_trouble or quarantined_file."""

    name = ConsoleEventName.ALARM_ALERT
    reason: str
    account: str | None = None
    kind: str | None = None
    code: str | None = None
    elder_id: int | None = None
    device_id: int | None = None
    calling_from: str | None = None
    file_name: str | None = None
    detail: str = ""
    event_id: int | None = None


class SpooledEmergency(_AboutElder):
    name = ConsoleEventName.SPOOLED_EMERGENCY
    order_no: str
    elder_id: int
    uniqueid: str


class SpooledUnknownCaller(ConsoleEvent):
    name = ConsoleEventName.SPOOLED_UNKNOWN_CALLER
    uniqueid: str
    caller: str | None = None
    caller_status: str
    spooled_at: str


class PbxCheck(ConsoleEvent):
    name = ConsoleEventName.PBX_CHECK
    ok: bool
    problems: list[str]


class CallAnswered(ConsoleEvent):
    """A seat answered a queued call (app_queue's AgentConnect): the card is that seat's."""

    name = ConsoleEventName.CALL_ANSWERED
    uniqueid: str
    linkedid: str | None = None
    queue: str | None = None
    interface: str | None = None  # PJSIP/op1001
    seat: str | None = None  # op1001: an account's seat
    member: str | None = None
    hold_s: int | None = None


class QueueAbandoned(ConsoleEvent):
    """A caller hung up while waiting for the operators."""

    name = ConsoleEventName.QUEUE_ABANDONED
    uniqueid: str
    linkedid: str | None = None


class AlarmAcknowledged(_AboutElder):
    """An operator acknowledged a new emergency: the consoles stop sounding for it."""

    name = ConsoleEventName.ALARM_ACKNOWLEDGED
    order_no: str
    order_id: int
    by: str


class MessageLeft(_AboutElder):
    """A caller left a spoken message (after hours, or the queue timed out): a call-back."""

    name = ConsoleEventName.MESSAGE_LEFT
    uniqueid: str
    elder_id: int | None = None
    caller: str | None = None  # masked
    duration_s: float | None = None


EVENT_TYPES: dict[ConsoleEventName, type[ConsoleEvent]] = {
    cls.name: cls for cls in (
        CallStarted, CallEnded, ScreenPop, Queued, Overflow, CallbackNeeded, OrderCreated,
        OrderAccepted, OrderArrived, OrderCompleted, DispatchEscalated, Alert,
        ComplaintOpened, EmergencyOpen, FamilyAcknowledged, FamilyNoKey, FamilyUnreached,
        AlarmEmergency, AlarmAlertEvent, SpooledEmergency, SpooledUnknownCaller, PbxCheck,
        CallAnswered, QueueAbandoned, AlarmAcknowledged, MessageLeft)
}


def from_payload(name: str, payload: Mapping[str, Any] | str | bytes) -> ConsoleEvent:
    """The event named ``name`` from its payload (a mapping or its JSON text)."""
    try:
        cls = EVENT_TYPES[ConsoleEventName(name)]
    except ValueError:
        raise ConsoleEventError(f"unknown console event {name!r}") from None
    try:
        if isinstance(payload, str | bytes):
            return cls.model_validate_json(payload)
        return cls.model_validate(payload)
    except ValidationError as exc:
        raise ConsoleEventError(f"bad {name} payload: {exc}") from None


def entry_fields(event: ConsoleEvent, outbox_id: int | None = None) -> dict[str, str]:
    """The stream entry's fields for ``event``."""
    fields = {"type": event.name.value, "data": event.data()}
    if outbox_id is not None:
        fields["outbox_id"] = str(outbox_id)
    return fields


def parse_entry(fields: Mapping[Any, Any]) -> ConsoleEvent:
    """The event of one stream entry (keys and values as text or bytes)."""
    text = {_text(key): _text(value) for key, value in fields.items()}
    if "type" not in text or "data" not in text:
        raise ConsoleEventError(f"stream entry without type or data: {sorted(text)}")
    return from_payload(text["type"], text["data"])


def outbox_id_of(fields: Mapping[Any, Any]) -> int | None:
    """The entry's ``outbox_id`` (None when it went out without its outbox row)."""
    for key, value in fields.items():
        if _text(key) == "outbox_id":
            try:
                return int(_text(value))
            except ValueError:
                raise ConsoleEventError(f"bad outbox_id {value!r}") from None
    return None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise ConsoleEventError("stream entry that is not UTF-8") from None
    return str(value)

