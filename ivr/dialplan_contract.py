"""The names the engine and the shipped dialplan (``dialplans/hotline.conf``) share.

Contexts the engine originates calls into, the FastAGI scripts the dialplan asks for,
channel variables passed either way, dialplan globals the engine reads, and the UserEvents
the dialplan raises. ``tests/test_dialplan_contract.py`` checks each against the dialplan,
so a rename on either side fails a test instead of a call.
"""

from __future__ import annotations

from enum import StrEnum


class Context(StrEnum):
    """Dialplan contexts the engine sends calls into with AMI Originate or Redirect."""

    FAMILY_ALERT = "hotline-family-alert"
    EMERGENCY_CALLBACK = "hotline-emergency-callback"
    CONFERENCE = "hotline-conference"
    VENDOR_OFFER = "hotline-vendor-offer"
    QUALITY_CALLBACK = "hotline-quality-callback"
    SEAT_DIAL = "hotline-seat-dial"  # click-to-call: the seat rings, then dials from here
    CARE_CALL = "hotline-care-call"  # a caring call: check-in, companionship, reminder...


class AgiScript(StrEnum):
    """``agi://<engine>/<script>``: the call flows the dialplan hands calls to."""

    INBOUND = "inbound"
    FAMILY_ALERT = "family_alert"
    VENDOR_OFFER = "vendor_offer"
    QUALITY_CALLBACK = "quality_callback"
    SERVICE_REPORT = "service_report"
    SEAT_DIAL = "seat_dial"
    CARE_CALL = "care_call"
    MESSAGE = "message"  # a non-emergency caller leaves a spoken message


class ChannelVar(StrEnum):
    """Channel variables: set by the engine for the dialplan, or by Originate for a flow."""

    ROUTE = "HOTLINE_ROUTE"  # engine -> dialplan: "done", or anything else for a human
    REASON = "HOTLINE_REASON"
    PRIORITY = "HOTLINE_PRIORITY"
    ORDER_NO = "HOTLINE_ORDER_NO"
    LANGUAGE = "HOTLINE_LANGUAGE"
    ELDER_ID = "HOTLINE_ELDER_ID"
    ORDER_ID = "HOTLINE_ORDER_ID"  # Originate -> flow
    CONTACT_ID = "HOTLINE_CONTACT_ID"
    ATTEMPT_ID = "HOTLINE_ATTEMPT_ID"
    ROUND_ID = "HOTLINE_ROUND_ID"  # Originate -> flow: a caring call's round
    DIAL_ALLOWED = "HOTLINE_DIAL_ALLOWED"  # seat dialling: the engine's verdict
    DIAL_NUMBER = "HOTLINE_DIAL_NUMBER"
    DIAL_KIND = "HOTLINE_DIAL_KIND"
    MESSAGE = "HOTLINE_MESSAGE"  # message flow -> dialplan: "stored"


class DialplanGlobal(StrEnum):
    """``[globals]`` of the dialplan that the engine reads over AMI (Getvar)."""

    QUEUE = "HOTLINE_QUEUE"
    OVERFLOW_QUEUE = "HOTLINE_OVERFLOW_QUEUE"


class UserEventName(StrEnum):
    """``UserEvent(...)`` names the dialplan raises about the operator queue."""

    QUEUED = "HotlineQueued"
    OVERFLOW = "HotlineOverflow"
    CALLBACK_NEEDED = "HotlineCallbackNeeded"
    RECORDING = "HotlineRecording"  # a call is recorded (MixMonitor): its file
