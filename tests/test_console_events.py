"""The consoles' event contract: every kind survives the stream, a bad entry is an error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatch import console_events as ev
from dispatch.console_events import (
    ConsoleEvent,
    ConsoleEventError,
    ConsoleEventName,
    entry_fields,
    outbox_id_of,
    parse_entry,
)
from dispatch.regions import Place, RegionLevel, RegionScope

PLACE = Place("110000", "110100", "110105")
README = Path(__file__).resolve().parent.parent / "README.md"

SAMPLES: list[ConsoleEvent] = [
    ev.CallStarted(uniqueid="1.1", channel="PJSIP/t-1", status="elder", elder_id=7,
                   caller="138****0000", place=PLACE),
    ev.CallEnded(uniqueid="1.1", disposition="order", reason="meal"),
    ev.ScreenPop(uniqueid="1.2", linkedid="1.2", reason="emergency", priority=10,
                 caller="+8613800138000", caller_status="elder", order_no="E1",
                 profile={"name": "张秀英", "phones": [{"number": "+861", "kind": "mobile"}]},
                 household=[None, {"name": "王"}], place=PLACE),
    ev.Queued(uniqueid="1.3", linkedid="1.3", reason="menu", queue_status="JOINED"),
    ev.Overflow(uniqueid="1.3", reason="full"),
    ev.CallbackNeeded(uniqueid="1.4", elder_id=7, number="+8613800138000", place=PLACE),
    ev.OrderCreated(order_no="S1", service="meal", elder_id=7, source="phone",
                    uniqueid="1.5", place=PLACE),
    ev.OrderAccepted(order_id=3, order_no="S1", vendor_id=2, place=PLACE),
    ev.OrderArrived(order_id=3, order_no="S1", worker_id=4, place=PLACE),
    ev.OrderCompleted(order_id=3, order_no="S1", worker_id=4, place=PLACE),
    ev.DispatchEscalated(order_id=3, reason="no_vendor", place=PLACE),
    ev.Alert(kind="late_arrival", order_id=3, order_no="S1", vendor_id=None, place=PLACE),
    ev.ComplaintOpened(order_id=3, rating=1, place=PLACE),
    ev.EmergencyOpen(order_no="E1", order_id=5, elder_id=7, elder="张秀英", age_s=90,
                     attempts=2, last_outcome="no_answer", place=PLACE),
    ev.FamilyAcknowledged(order_id=5, contact_id=8, place=PLACE),
    ev.FamilyNoKey(order_id=5, contact_id=8, place=PLACE),
    ev.FamilyUnreached(order_id=5, place=PLACE),
    ev.AlarmEmergency(order_no="E2", elder_id=7, kinds=["fall"], place=PLACE),
    ev.AlarmAlertEvent(reason="device_trouble", account="1234", kind="low_battery",
                       code="302", elder_id=7, device_id=1, calling_from="+861",
                       file_name="a.txt", detail="low battery", event_id=9, place=PLACE),
    ev.SpooledEmergency(order_no="E3", elder_id=7, uniqueid="1.6", place=PLACE),
    ev.SpooledUnknownCaller(uniqueid="1.7", caller="+8613312345678", caller_status="unknown",
                            spooled_at="2026-01-01 00:00:00+00:00"),
    ev.PbxCheck(ok=False, problems=["context hotline-inbound missing"]),
    ev.CallAnswered(uniqueid="1.2", linkedid="1.2", queue="operators",
                    interface="PJSIP/op1001", seat="op1001", member="op1001", hold_s=4),
    ev.QueueAbandoned(uniqueid="1.3", linkedid="1.3"),
    ev.AlarmAcknowledged(order_no="E1", order_id=5, by="zhang", place=PLACE),
    ev.MessageLeft(uniqueid="1.4", elder_id=7, caller="138****0000", duration_s=12.5,
                   place=PLACE),
]


def _as_redis(fields: dict[str, str]) -> dict[bytes, bytes]:
    return {key.encode(): value.encode() for key, value in fields.items()}


def test_every_kind_has_one_model_and_a_sample() -> None:
    assert set(ev.EVENT_TYPES) == set(ConsoleEventName)
    assert sorted(event.name for event in SAMPLES) == sorted(ConsoleEventName)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.name.value)
def test_every_kind_round_trips_through_a_stream_entry(event: ConsoleEvent) -> None:
    fields = entry_fields(event, outbox_id=42)
    assert fields["type"] == event.name.value
    assert parse_entry(_as_redis(fields)) == event
    assert parse_entry(fields) == event
    assert outbox_id_of(_as_redis(fields)) == 42
    assert ev.from_payload(event.name, event.payload()) == event  # the outbox row's form


def test_without_outbox_id_the_entry_has_none() -> None:
    fields = entry_fields(ev.FamilyUnreached(order_id=1))
    assert "outbox_id" not in fields
    assert outbox_id_of(fields) is None


def test_an_unknown_caller_has_an_empty_place_and_is_in_no_region() -> None:
    event = parse_entry(entry_fields(ev.CallbackNeeded(uniqueid="1.8")))
    assert isinstance(event, ev.CallbackNeeded)
    assert event.place == Place()
    assert not RegionScope(RegionLevel.PROVINCE, "110000").covers(event.place)


def test_the_region_filter_reads_the_place_of_a_parsed_screen_pop() -> None:
    [pop] = [event for event in SAMPLES if event.name is ConsoleEventName.SCREEN_POP]
    parsed = parse_entry(_as_redis(entry_fields(pop)))
    assert isinstance(parsed, ev.ScreenPop)
    assert RegionScope.parse("county:110105").covers(parsed.place)
    assert not RegionScope.parse("county:110106").covers(parsed.place)


@pytest.mark.parametrize("fields", [
    {"type": "no_such_event", "data": "{}"},
    {"type": "alert", "data": "{not json"},
    {"type": "alert", "data": '{"kind": "late_arrival"}'},  # order fields missing
    {"type": "call_ended", "data": '["a list"]'},
    {"data": "{}"},
    {"type": "call_ended"},
    {b"type": b"\xff", b"data": b"{}"},
    {"type": "family_unreached", "data": '{"order_id": "five"}'},
], ids=["unknown", "bad-json", "missing-field", "not-object", "no-type",
        "no-data", "not-utf8", "bad-type"])
def test_a_malformed_entry_is_a_console_event_error(fields: dict[object, object]) -> None:
    with pytest.raises(ConsoleEventError):
        parse_entry(fields)


def test_a_field_from_a_newer_engine_is_ignored() -> None:
    fields = {"type": "pbx_check", "data": '{"ok": true, "problems": [], "later": 1}'}
    assert parse_entry(fields) == ev.PbxCheck(ok=True, problems=[])


def test_a_bad_outbox_id_is_a_console_event_error() -> None:
    with pytest.raises(ConsoleEventError):
        outbox_id_of({b"outbox_id": b"x"})


def test_events_are_immutable() -> None:
    event = ev.FamilyUnreached(order_id=1)
    with pytest.raises(ValueError):
        event.order_id = 2  # type: ignore[misc]


def test_the_readme_lists_exactly_the_module_s_events() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## The consoles' event stream", 1)[1].split("\n## ", 1)[0]
    listed = re.search(r"The events \(`dispatch/console_events.py`\):(.*?)\n\n", section,
                       re.S)
    assert listed is not None
    assert sorted(re.findall(r"`([a-z_]+)`", listed.group(1))) == sorted(ConsoleEventName)
