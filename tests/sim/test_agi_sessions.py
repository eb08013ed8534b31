"""The FastAGI client and the classic agi-bin runner over real sockets and pipes: engine down,
silent engine, hangup during a command and the dead-channel rules, a new command interrupting
playback, scripts run as child processes (including a pyst2 script)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.sim.conftest import DIALPLANS
from tests.sim.fastagi_peer import FastAgiPeer
from tests.simharness import start_sim
from tests.tcp_split import write_then_wait_until_read

PLAN = [DIALPLANS / "agi.conf"]


def caller(context: str, **extra) -> dict:
    return {"number": "13800138000", "name": "张兰", "to": "s", "context": context, **extra}


async def test_engine_down_gives_failure_and_the_dialplan_goes_on(sounds) -> None:
    async with start_sim(PLAN, sounds, speed=20) as sim:
        result = await sim.call(caller("agi-down"))
    assert result["variables"]["AGISTATUS"] == "FAILURE"
    assert result["variables"]["FALLBACK"] == "FAILURE"
    assert result["agi"] == [{"script": "agi://127.0.0.1:1/inbound", "status": "FAILURE",
                              "commands": []}]


async def test_environment_keeps_query_arguments_and_utf8_name(sounds) -> None:
    peer = await FastAgiPeer(["GET VARIABLE CALLERID(name)", "ANSWER\r", "GET"]).start()
    async with start_sim(PLAN, sounds, {"ENGINE": f"127.0.0.1:{peer.port}"}, speed=20) as sim:
        result = await sim.call(caller("agi-test"))
    await peer.stop()
    env = dict(line.split(": ", 1) for line in peer.sessions[0].env)
    assert env["agi_network_script"] == "t?x=1&y=2"
    assert env["agi_request"] == f"agi://127.0.0.1:{peer.port}/t?x=1&y=2"
    assert env["agi_calleridname"] == "张兰"
    assert env["agi_channel"].startswith("PJSIP/pstn-")
    assert env["agi_type"] == "PJSIP"
    assert env["agi_dnid"] == "s"
    assert env["agi_arg_1"] == "arg one"
    assert peer.sessions[0].replies == [
        ["200 result=1 (张兰)"], ["510 Invalid or unknown command"],
        ["510 Invalid or unknown command"],
    ]
    assert result["variables"]["AFTER"] == "SUCCESS"
    assert result["variables"]["H_RAN"] == "yes"
    assert result["apps"][2][1:] == ["UserEvent", "AgiDone,Status: SUCCESS"]


async def test_silent_engine_is_dropped_after_the_idle_bound(sounds) -> None:
    peer = await FastAgiPeer([], hold_open=15).start()
    async with start_sim(PLAN, sounds, {"ENGINE": f"127.0.0.1:{peer.port}"}, speed=20,
                         extra_args=["--agi-idle-timeout", "0.5"]) as sim:
        result = await sim.call(caller("agi-test"))
    await peer.stop()
    assert result["variables"]["AGISTATUS"] == "FAILURE"
    assert result["agi"][0]["commands"] == []


async def test_hangup_during_a_command_then_dead_channel_rules(sounds) -> None:
    script = ["ANSWER", 'STREAM FILE long ""', 'STREAM FILE beep ""', "ANSWER", "EXEC NoOp x",
              "DATABASE PUT fam key v", "DATABASE GET fam key", "NOOP", "GET VARIABLE AGISTATUS",
              'SET VARIABLE LATE "yes"']
    peer = await FastAgiPeer(script).start()
    async with start_sim(PLAN, sounds, {"ENGINE": f"127.0.0.1:{peer.port}"}, speed=10) as sim:
        result = await sim.call(caller("agi-test", hangup_after=1.0))
    await peer.stop()
    session = peer.sessions[0]
    replies = session.replies
    assert replies[0] == ["200 result=0"]
    assert replies[1][0].startswith("200 result=-1 endpos=")
    assert 0 < int(replies[1][0].rsplit("=", 1)[1]) <= 8000 * 2
    dead = "511 Command Not Permitted on a dead channel or intercept routine"
    assert replies[2:] == [[dead], [dead], ["200 result=0"], ["200 result=1"],
                           ["200 result=1 (v)"], ["200 result=0"], ["200 result=0"],
                           ["200 result=1"]]
    lines = [text for side, text in session.transcript if side == "S"]
    first_reply = lines.index(replies[1][0])
    assert lines[first_reply + 1] == "HANGUP"      # unsolicited, right after the -1 reply
    assert lines.count("HANGUP") == 1
    assert result["variables"]["AGISTATUS"] == "HANGUP"
    assert result["variables"]["LATE"] == "yes"
    assert result["hangup_by"] == "caller"
    assert "AFTER" not in result["variables"]      # AGI() returned -1: dialplan stopped
    assert result["variables"]["H_RAN"] == "yes"


async def test_agisighup_no_suppresses_hangup_lines(sounds) -> None:
    peer = await FastAgiPeer(['STREAM FILE long ""', "NOOP"]).start()
    async with start_sim(PLAN, sounds, {"ENGINE": f"127.0.0.1:{peer.port}"}, speed=10) as sim:
        await sim.call(caller("agi-test", hangup_after=0.5, variables={"AGISIGHUP": "no"}))
    await peer.stop()
    lines = [text for side, text in peer.sessions[0].transcript if side == "S"]
    assert "HANGUP" not in lines
    assert peer.sessions[0].replies[1] == ["200 result=0"]


async def test_a_new_command_interrupts_playback_without_a_reply(sounds) -> None:
    received: list[bytes] = []
    done = asyncio.Event()

    async def engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()).strip():
            pass
        # the simulator has read the command (and started playing) before the next one
        await write_then_wait_until_read(writer, b'STREAM FILE long "1"\n')
        writer.write(b"NOOP\n")
        await writer.drain()
        received.append(await asyncio.wait_for(reader.readline(), 10))
        writer.write(b"A" * 9000 + b"\n")             # longer than Asterisk's 8 KiB buffer
        await writer.drain()
        received.append(await asyncio.wait_for(reader.readline(), 10))
        received.append(await asyncio.wait_for(reader.readline(), 10))
        writer.close()
        done.set()

    server = await asyncio.start_server(engine, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with start_sim(PLAN, sounds, {"ENGINE": f"127.0.0.1:{port}"}, speed=1) as sim:
        result = await sim.call(caller("agi-test"))
    server.close()
    await asyncio.wait_for(done.wait(), 5)
    assert received == [b"200 result=0\n", b"510 Invalid or unknown command\n",
                        b"510 Invalid or unknown command\n"]
    commands = result["agi"][0]["commands"]
    assert [c[:2] for c in commands[:2]] == [['STREAM FILE long "1"', ""], ["NOOP",
                                                                          "200 result=0"]]
    assert result["heard"][0][1] == "long"


SCRIPT = """#!{python}
import sys
env = {{}}
for line in sys.stdin:
    line = line.rstrip("\\n")
    if not line:
        break
    key, _, value = line.partition(": ")
    env[key] = value
replies = []
for command in ["ANSWER", "GET VARIABLE CALLERID(num)", 'STREAM FILE beep ""',
                'SET VARIABLE FROM_SCRIPT "%s|%s|%s" ' % (env.get("agi_request"),
                env.get("agi_arg_1"), env.get("agi_arg_2"))]:
    sys.stdout.write(command + "\\n")
    sys.stdout.flush()
    replies.append(sys.stdin.readline().rstrip("\\n"))
with open({log!r}, "w") as out:
    out.write("\\n".join(replies))
sys.exit({code})
"""


def write_script(path: Path, log: Path, code: int = 0) -> Path:
    path.write_text(SCRIPT.format(python=sys.executable, log=str(log), code=code))
    path.chmod(0o755)
    return path


async def test_classic_scripts_success_failure_and_notfound(sounds, tmp_path: Path) -> None:
    ok = write_script(tmp_path / "ok.py", tmp_path / "ok.log")
    bad = write_script(tmp_path / "bad.py", tmp_path / "bad.log", code=3)
    args = ["--agi-dir", str(tmp_path)]
    async with start_sim(PLAN, sounds, speed=20, extra_args=args) as sim:
        results = await asyncio.gather(
            sim.call(caller("classic", variables={"SCRIPT": ok.name})),
            sim.call(caller("classic", variables={"SCRIPT": str(bad)})),
            sim.call(caller("classic", variables={"SCRIPT": "missing.py"})),
        )
    assert (tmp_path / "ok.log").read_text().splitlines() == [
        "200 result=0", "200 result=1 (13800138000)", "200 result=0 endpos=2000",
        "200 result=1",
    ]
    assert results[0]["variables"]["FROM_SCRIPT"] == "ok.py|a1|a two"
    assert [r["variables"]["AFTER"] for r in results] == ["SUCCESS", "FAILURE", "NOTFOUND"]


PYST2_SCRIPT = """#!{python}
from asterisk.agi import AGI
agi = AGI()
agi.answer()
digit = agi.stream_file("welcome", escape_digits="12")
agi.set_variable("PYST", "%s:%s" % (agi.env["agi_arg_1"], digit))
"""


async def test_pyst2_script_runs_as_asterisk_runs_it(sounds, tmp_path: Path) -> None:
    script = tmp_path / "pyst.py"
    script.write_text(PYST2_SCRIPT.format(python=sys.executable))
    script.chmod(0o755)
    async with start_sim(PLAN, sounds, speed=20, extra_args=["--agi-dir", str(tmp_path)]) as sim:
        result = await sim.call(caller("classic", variables={"SCRIPT": "pyst.py"},
                                       script=[{"press": "2", "delay": 0.5}]))
    assert result["variables"]["AFTER"] == "SUCCESS", result
    assert result["variables"]["PYST"] == "a1:2"



async def test_record_say_and_get_option(sounds, tmp_path: Path) -> None:
    script = [
        'RECORD FILE msg1 wav "#" 2000',           # silent party: runs to the timeout
        'RECORD FILE msg2 wav "#" 10000 s=3',      # 3 s of silence ends it, minus 2 s trimmed
        'RECORD FILE sub/msg3 wav "#" -1',         # the party presses # after 1.5 s
        'RECORD FILE msg4 xyz "#" 1000',           # unknown format
        'SAY DIGITS 123 ""',
        'SAY DIGITS 456 "5"',                      # the party presses 5 during "4"
        "SAY NUMBER 42 \"\"",
        "GET OPTION beep \"12\" 2000",             # key after the prompt, within the timeout
        'STREAM FILE welcome "" 16000',            # starts 2 s in
        "WAIT FOR DIGIT x",
    ]
    steps = [{"silent": True}, {"silent": True}, {"press": "#", "delay": 1.5},
             {"press": "5", "delay": 0.2}, {"press": "2", "delay": 1.0}]
    peer = await FastAgiPeer(script).start()
    async with start_sim(PLAN, sounds, {"ENGINE": f"127.0.0.1:{peer.port}"}, speed=20,
                         extra_args=["--record-dir", str(tmp_path)]) as sim:
        result = await sim.call(caller("agi-test", script=steps))
    await peer.stop()
    replies = [r[0] for r in peer.sessions[0].replies]
    assert replies[:9] == [
        "200 result=0 (timeout) endpos=16000",
        "200 result=0 (timeout) endpos=8000",
        "200 result=35 (dtmf) endpos=10400",
        "200 result=-1 (writefile)",
        "200 result=0",
        "200 result=53",
        "200 result=0",
        "200 result=50 endpos=2000",
        "200 result=0 endpos=24000",
    ]
    assert replies[9] == "520-Invalid command syntax.  Proper usage follows:"
    assert (tmp_path / "sub" / "msg3.wav").stat().st_size == 44 + 2 * 10400
    # SAY NUMBER 42 needs digits/40, which the fixture lacks: it is skipped, digits/2 plays
    assert [h[1] for h in result["heard"]] == ["digits/1", "digits/2", "digits/3", "digits/4",
                                               "digits/2", "beep", "welcome"]
    assert result["heard"][3][2] == "5"
