"""The simulator's FastAGI client against the byte-exact Asterisk 22 transcripts: the same
calls (dialplan fixture + scripted parties) must produce the same environment block and the
same replies, line for line. Only values that differ between any two runs are normalised:
the uniqueid, the thread id, the Local channel counter and the engine's port."""

from __future__ import annotations

import re

from tests.sim.conftest import DIALPLANS
from tests.sim.fastagi_peer import FastAgiPeer
from tests.simharness import start_sim
from tests.traces import read_trace

_VARIABLE = [
    (re.compile(r"^agi_uniqueid: \d+\.\d+$"), "agi_uniqueid: <uid>"),
    (re.compile(r"^agi_threadid: \d+$"), "agi_threadid: <tid>"),
    (re.compile(r"-[0-9a-f]{8};1$"), "-<n>;1"),
    (re.compile(r"^agi_request: agi://127\.0\.0\.1:\d+/"), "agi_request: agi://127.0.0.1:<p>/"),
]


def normalise(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for side, text in lines:
        for pattern, repl in _VARIABLE:
            text = pattern.sub(repl, text)
        out.append((side, text))
    return out


def trace(name: str) -> list[tuple[str, str]]:
    return [(line.side, line.text) for line in read_trace(name)]


def commands(name: str) -> list[str]:
    return [text for side, text in trace(name) if side == "C"]


async def run_trace(sounds, name: str, phone: str, script: list[dict], **originate) -> tuple:
    peer = await FastAgiPeer(commands(name)).start()
    try:
        async with start_sim([DIALPLANS / "traces.conf"], sounds,
                             {"ENGINE": f"127.0.0.1:{peer.port}"}, speed=20) as sim:
            await sim.request("phones", phones={
                phone: {"answer": "answer", "ring_s": 0, "script": script, "hangup_after": None}
            })
            result = await sim.originate(**originate)
    finally:
        await peer.stop()
    assert len(peer.sessions) == 1
    return peer.sessions[0], result


async def test_menu_session_matches_trace(sounds) -> None:
    script = [
        {"press": "1", "delay": 1.72},                 # interrupts "welcome" at 13760 samples
        {"press": "23#", "delay": 2.0, "gap": 0.2},    # "2" ends GET DATA ... 1, "3#" the next
        {"press": "9", "delay": 2.0},                  # WAIT FOR DIGIT
    ]
    session, result = await run_trace(
        sounds, "menu.agi.txt", "s@caller-keys", script,
        channel="Local/s@caller-keys/n", context="from-pstn", exten="12349", priority=1,
        caller_id='"Zhang Lan" <13800138000>', variables={"AGI_SCENARIO": "menu"},
    )
    assert normalise(session.transcript) == normalise(trace("menu.agi.txt"))
    assert result["reason"] == 4
    call = result["call"]
    # a command that returned -1 on a live channel (the missing prompt) makes AGISTATUS FAILURE
    assert call["variables"]["AGISTATUS"] == "FAILURE"
    assert call["variables"]["CHOICE"] == "1"
    assert [app for _t, app, _d in call["apps"]] == ["Answer", "AGI", "NoOp", "UserEvent",
                                                     "Hangup"]
    assert re.fullmatch(r"agi://127\.0\.0\.1:\d+/menu,first arg,second", call["apps"][1][2])
    assert call["apps"][3][2] == "TraceDone,Status: FAILURE,Choice: 1"
    assert [p[1] for p in call["pressed"]] == ["1", "2", "3", "#", "9"]
    assert call["heard"][0][1:] == ["welcome", "1"]
    latencies = [cmd[2] for cmd in call["agi"][0]["commands"]]
    assert len(latencies) == len(commands("menu.agi.txt")) and min(latencies) >= 0


async def test_hangup_session_matches_trace(sounds) -> None:
    session, result = await run_trace(
        sounds, "hangup.agi.txt", "s@caller-hangs-up", [{"hangup": True, "delay": 2.0}],
        channel="Local/s@caller-hangs-up/n", context="from-pstn", exten="12349", priority=1,
        caller_id="09318123456", variables={"AGI_SCENARIO": "hangup"},
    )
    assert normalise(session.transcript) == normalise(trace("hangup.agi.txt"))
    call = result["call"]
    assert call["variables"]["AGISTATUS"] == "HANGUP"
    assert call["variables"]["X"] == "after hangup"
    # AGI() returns -1 on HANGUP: the dialplan stops right there
    assert [app for _t, app, _d in call["apps"]] == ["Answer", "AGI"]
    assert call["hangup_by"] == "callee"


async def test_vendor_offer_session_matches_trace(sounds) -> None:
    session, result = await run_trace(
        sounds, "vendor_offer.agi.txt", "s@callee-answers", [{"press": "1", "delay": 1.0}],
        channel="Local/s@callee-answers/n", context="vendor-offer", exten="s", priority=1,
        caller_id="12349", variables={"ORDER_ID": "77"}, timeout_ms=30000,
    )
    assert normalise(session.transcript) == normalise(trace("vendor_offer.agi.txt"))
    call = result["call"]
    assert call["variables"]["AGISTATUS"] == "SUCCESS"
    assert call["variables"]["ACCEPTED"] == "yes"
