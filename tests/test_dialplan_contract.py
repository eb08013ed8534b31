"""The names in ``ivr/dialplan_contract.py`` exist in the shipped dialplan, and the engine
serves exactly the FastAGI scripts the dialplan asks for."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from ivr.dialplan_contract import (
    AgiScript,
    ChannelVar,
    Context,
    DialplanGlobal,
    UserEventName,
)
from ivr.engine import FLOW_SCRIPTS
from sim.dialplan.parser import load

ROOT = Path(__file__).resolve().parents[1]
PLAN = load([ROOT / "asterisk_conf" / "extensions.conf"])
TEXT = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "dialplans").glob("*.conf"))
# Not read by the dialplan: passed by the engine's Originate to its own flow (read back with
# AGI), or left on the channel for the call records (the order number, the seat call's kind).
ENGINE_ONLY = {ChannelVar.CONTACT_ID, ChannelVar.ELDER_ID, ChannelVar.DIAL_KIND,
               ChannelVar.ORDER_NO}


def test_every_context_the_engine_originates_into_exists() -> None:
    missing = [context.value for context in Context if context.value not in PLAN.contexts]
    assert missing == []


def test_the_engine_serves_every_script_the_dialplan_asks_for() -> None:
    asked = set(re.findall(r"AGI\(\$\{HOTLINE_AGI\}/([a-z_]+)", TEXT))
    assert asked == {script.value for script in AgiScript}
    assert set(FLOW_SCRIPTS) == set(AgiScript)


def test_channel_variables_are_used_by_the_dialplan() -> None:
    for variable in set(ChannelVar) - ENGINE_ONLY:
        assert re.search(rf"\b{variable.value}\b", TEXT), variable


def test_globals_the_engine_reads_are_defined() -> None:
    assert all(name.value in PLAN.globals for name in DialplanGlobal)


def test_user_events_are_raised_by_the_dialplan() -> None:
    raised = set(re.findall(r"UserEvent\((\w+)", TEXT))
    assert {name.value for name in UserEventName} <= raised


def test_the_shipped_dialplan_loads_without_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A priority defined twice (a context pasted twice) is ignored by Asterisk with a
    warning, as by the simulator: the shipped dialplan has none."""
    with caplog.at_level(logging.WARNING, logger="sim.dialplan"):
        load([ROOT / "asterisk_conf" / "extensions.conf"])
    assert [record.getMessage() for record in caplog.records] == []
