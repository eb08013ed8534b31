"""The shipped manager.conf lets through exactly the events the engine handles (its
``eventfilter`` lines), and the simulator applies them as manager.c does: a call's
Newchannel, Newstate, DialBegin... never reach the engine, its Hangup and queue events do."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.phones import national
from sim.ami.event_filters import EventFilters, parse_filter
from sim.ami.events import AmiEvent
from sim.conf import read_sections
from tests.callstack import CallStack, open_stack, until
from tests.simharness import ROOT

SHIPPED = ROOT / "asterisk_conf" / "manager.conf"
PROTOCOL_EVENTS = {"Shutdown"}  # logged by the AMI protocol itself, not by a handler


def shipped_filters() -> EventFilters:
    [section] = [section for section in read_sections(SHIPPED) if section.name == "hotline"]
    return EventFilters.of(parse_filter(key, value) for key, value in section.lines
                           if key.startswith("eventfilter"))


def event(name: str, **headers: str) -> AmiEvent:
    return AmiEvent.of(name, "call", headers.items())


def test_include_and_exclude_filters_follow_manager_c() -> None:
    hangup = event("Hangup", Channel="PJSIP/trunk-00000001")
    newstate = event("Newstate", Channel="PJSIP/operator1-00000002")
    assert EventFilters().passes(newstate)  # no filters: everything
    by_name = EventFilters.of([parse_filter("eventfilter(action(include),name(Hangup))", "")])
    assert by_name.passes(hangup) and not by_name.passes(newstate)
    trunk_only = EventFilters.of([
        parse_filter("eventfilter(name(Hangup))", ""),
        parse_filter("eventfilter(action(exclude),header(Channel),method(starts_with))",
                     "PJSIP/trunk")])
    assert not trunk_only.passes(hangup) and not trunk_only.passes(newstate)
    legacy = EventFilters.of([parse_filter("eventfilter", "!Channel: PJSIP/operator")])
    assert legacy.passes(hangup) and not legacy.passes(newstate)  # excludes only
    assert EventFilters.of([parse_filter("eventfilter", "Event: Hang")]).passes(hangup)
    assert not EventFilters.of([parse_filter("eventfilter(name(hangup))", "")]).passes(hangup)


@pytest.mark.parametrize(("key", "value"), [
    ("eventfilter(action(maybe),name(Hangup))", ""),
    ("eventfilter(name(Hangup),name(Newstate))", ""),
    ("eventfilter(colour(red))", ""),
    ("eventfilter(method(fuzzy))", "x"),
    ("eventfilter", "Event: (unclosed"),
    ("eventfilter(name(Hangup))", "Channel: PJSIP"),  # a pattern needs a method
    ("eventfilter(name(Hangup),method(regex))", ""),
    ("eventfilter", ""),
])
def test_a_broken_filter_line_is_refused(key: str, value: str) -> None:
    with pytest.raises(ValueError, match="eventfilter"):
        parse_filter(key, value)


async def test_the_engine_gets_only_and_all_the_events_it_handles(tmp_path: Path) -> None:
    async for stack in open_stack("embedded", tmp_path, elders=20, ami=True):
        await _only_handled_events(stack)


async def _only_handled_events(stack: CallStack) -> None:
    allowed = {f.name for f in shipped_filters().includes}
    assert stack.engine is not None and stack.engine.ami_clients
    client = stack.engine.ami_clients[0]
    assert set(client.handled_events) == allowed - PROTOCOL_EVENTS
    seen: list[str] = []
    client.on_event("*", lambda message: seen.append(message.event))
    result = await stack.call(national(stack.numbers["handsets"][0]))
    assert result["queue"]["answered_at"] is not None
    await until(lambda: "Hangup" in seen, "the call's Hangup event")
    assert {"QueueCallerJoin", "AgentConnect", "UserEvent"} <= set(seen)
    assert set(seen) <= allowed, set(seen) - allowed
