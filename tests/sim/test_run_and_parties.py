"""``python -m sim run`` plays a scenario file; party scripts carry over unpressed keys."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from sim.parties import PartyError, PartyInput, PhoneBook, parse_script, parse_step
from tests.sim.conftest import DIALPLANS
from tests.simharness import ROOT


async def test_run_mode_writes_results(sounds: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    results = tmp_path / "results.json"
    scenario.write_text(json.dumps({"calls": [
        {"at": 0, "caller": {"number": "1", "to": "s", "context": "menu",
                             "script": [{"press": "1", "delay": 0.5}]}},
        {"at": 30, "caller": {"number": "2", "to": "s", "context": "menu",
                              "script": [{"press": "12", "delay": 0.5}]}},
    ]}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim", "run", "--dialplans", str(DIALPLANS / "basic.conf"),
        "--sounds", str(sounds), "--speed", "50", "--scenario", str(scenario),
        "--results", str(results), cwd=ROOT, stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    data = json.loads(results.read_text())
    first, second = data["calls"]
    assert first["variables"]["CHOICE"] == "one"
    assert second["variables"]["CHOICE"] == "twelve"
    assert second["started_at"] - first["started_at"] >= 30
    assert data["stats"]["calls_ended"] == 2


async def test_run_mode_rejects_a_bad_dialplan(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("[c]\nexten => 1,1,NoOp(\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim", "run", "--dialplans", str(bad), "--scenario", str(bad),
        "--results", str(tmp_path / "r.json"), cwd=ROOT, stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "bad.conf:2: missing ')'" in err.decode()


def test_script_steps() -> None:
    assert parse_step({"press": "12#", "delay": 1, "gap": 0.5}) == [
        PartyInput(1.0, "1"), PartyInput(1.5, "2"), PartyInput(2.0, "#")]
    assert parse_step({"silent": True}) == []
    assert parse_step({"hangup": True, "delay": 2}) == [PartyInput(2.0, None)]
    assert parse_step({"press": "a"}) == [PartyInput(1.0, "A")]
    for bad in ({"press": ""}, {"press": "1x"}, {"press": "1", "delay": -1}, {"hangup": 1,
                "delay": "soon"}, "press 1", {}):
        with pytest.raises(PartyError):
            parse_step(bad)
    with pytest.raises(PartyError):
        parse_script({"press": "1"})


def test_steps_are_taken_only_at_opportunities_and_carry_over() -> None:
    book = PhoneBook()
    book.update({"100": {"script": [{"press": "12", "delay": 1, "gap": 1}, {"press": "9"}]}})
    party = book.party("100")
    assert party.arm(opportunity=False) == []            # a plain prompt takes no step
    first = party.arm(opportunity=True)
    assert [i.digit for i in first] == ["1", "2"]
    party.disarm([first[1].later(1.5)])                  # "2" not pressed yet, 0.5 s to go
    assert party.arm(opportunity=True) == [PartyInput(0.5, "2")]   # no new step meanwhile
    party.disarm([])
    assert [i.digit for i in party.arm(opportunity=True)] == ["9"]
    assert party.arm(opportunity=True) == []             # script exhausted: silence
    assert book.party("unknown").config.answer == "answer"
    assert book.party("unknown").config.ring_s == 3.0


def test_log_lines_mask_phone_numbers() -> None:
    from sim.logmask import mask_numbers

    assert mask_numbers("call from 13800138000 to 12349") == "call from 138******00 to 12349"
    assert mask_numbers("PJSIP/09318123456@trunk") == "PJSIP/093******56@trunk"
    assert mask_numbers("uniqueid 1795346825.0 at 12.5") == "uniqueid 1795346825.0 at 12.5"
    assert mask_numbers("PJSIP/pstn-00000012 hung up") == "PJSIP/pstn-00000012 hung up"
