"""AGI commands on variables, the channel and the PBX: GET/SET VARIABLE, GET FULL VARIABLE,
EXEC, DATABASE *, CHANNEL STATUS, HANGUP, VERBOSE, NOOP, SET CONTEXT/EXTENSION/PRIORITY/
CALLERID/AUTOHANGUP, text, image, TDD, speech and ASYNCAGI BREAK."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sim.agi.commands import (
    ASYNC_AGI_BREAK,
    RESULT_FAILURE,
    RESULT_SHOWUSAGE,
    RESULT_SUCCESS,
    command,
)
from sim.agi.media_commands import atoi, scan_int
from sim.functions import expand, parse_callerid, read_function, write_function

if TYPE_CHECKING:
    from sim.agi.session import AgiSession

log = logging.getLogger(__name__)


@command("get variable", dead=True)
async def get_variable(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    name = argv[2]
    if name.endswith(")") and "(" in name:
        fname, _, args = name.partition("(")
        value = read_function(s.pbx, s.chan, fname, args[:-1])
    else:
        value = s.pbx.lookup_variable(s.chan, name)
    s.send(f"200 result=1 ({value})\n" if value is not None else "200 result=0\n")
    return RESULT_SUCCESS


@command("get full variable", dead=True)
async def get_full_variable(s: AgiSession, argv: list[str]) -> int:
    if len(argv) not in (4, 5):
        return RESULT_SHOWUSAGE
    target = s.pbx.find_channel(argv[4]) if len(argv) == 5 else s.chan
    if target is None:
        s.send("200 result=0\n")
    else:
        s.send(f"200 result=1 ({expand(s.pbx, target, argv[3])})\n")
    return RESULT_SUCCESS


@command("set variable", dead=True)
async def set_variable(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4:
        return RESULT_SHOWUSAGE
    name, value = argv[2], argv[3]
    if name.endswith(")") and "(" in name:
        write_function(s.pbx, s.chan, name, value)
    else:
        s.chan.set_var(name, value)
    s.send("200 result=1\n")
    return RESULT_SUCCESS


@command("exec", dead=True)
async def exec_app(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 2:
        return RESULT_SHOWUSAGE
    from sim.apps.registry import AppContext, find_app
    from sim.interpreter import run_app

    fn = find_app(argv[1])
    if fn is None:
        log.warning("Could not find application (%s)", argv[1])
        res = -2
    else:
        data = argv[2] if len(argv) > 2 else ""
        full = (s.pbx.lookup_variable(s.chan, "AGIEXECFULL") or "").lower()
        if full in ("yes", "true", "y", "t", "1", "on"):
            data = expand(s.pbx, s.chan, data)
        res = await run_app(fn, AppContext(s.chan, s.pbx, s.runner), data)
    s.send(f"200 result={res}\n")
    return res


@command("database get", dead=True)
async def database_get(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4:
        return RESULT_SHOWUSAGE
    value = s.pbx.astdb.get((argv[2], argv[3]))
    s.send(f"200 result=1 ({value})\n" if value is not None else "200 result=0\n")
    return RESULT_SUCCESS


@command("database put", dead=True)
async def database_put(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 5:
        return RESULT_SHOWUSAGE
    s.pbx.astdb[(argv[2], argv[3])] = argv[4]
    s.send("200 result=1\n")
    return RESULT_SUCCESS


@command("database del", dead=True)
async def database_del(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 4:
        return RESULT_SHOWUSAGE
    found = s.pbx.astdb.pop((argv[2], argv[3]), None) is not None
    s.send(f"200 result={1 if found else 0}\n")
    return RESULT_SUCCESS


@command("database deltree", dead=True)
async def database_deltree(s: AgiSession, argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        return RESULT_SHOWUSAGE
    family = argv[2]
    prefix = argv[3] if len(argv) == 4 else None
    doomed = [k for k in s.pbx.astdb if k[0] == family and (prefix is None or
                                                            k[1].startswith(prefix))]
    for key in doomed:
        del s.pbx.astdb[key]
    s.send(f"200 result={0 if doomed else 1}\n")
    return RESULT_SUCCESS


@command("channel status")
async def channel_status(s: AgiSession, argv: list[str]) -> int:
    if len(argv) == 2:
        s.send(f"200 result={int(s.chan.state)}\n")
    elif len(argv) == 3:
        other = s.pbx.find_channel(argv[2])
        s.send(f"200 result={int(other.state)}\n" if other else "200 result=-1\n")
    else:
        return RESULT_SHOWUSAGE
    return RESULT_SUCCESS


@command("hangup")
async def hangup(s: AgiSession, argv: list[str]) -> int:
    if len(argv) == 1:
        s.chan.request_hangup(16, by="pbx", soft=True)
        s.send("200 result=1\n")
    elif len(argv) == 2:
        other = s.pbx.find_channel(argv[1])
        if other is None:
            s.send("200 result=-1\n")
        else:
            other.request_hangup(16, by="pbx", soft=True)
            s.send("200 result=1\n")
    else:
        return RESULT_SHOWUSAGE
    return RESULT_SUCCESS


@command("verbose", dead=True)
async def verbose(s: AgiSession, argv: list[str]) -> int:
    if len(argv) < 2:
        return RESULT_SHOWUSAGE
    log.info("%s: %s", s.chan.name, argv[1])
    s.send("200 result=1\n")
    return RESULT_SUCCESS


@command("noop", dead=True)
async def noop(s: AgiSession, argv: list[str]) -> int:
    s.send("200 result=0\n")
    return RESULT_SUCCESS


@command("set context")
async def set_context(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    s.chan.context = argv[2]
    s.send("200 result=0\n")
    return RESULT_SUCCESS


@command("set extension")
async def set_extension(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    s.chan.exten = argv[2]
    s.send("200 result=0\n")
    return RESULT_SUCCESS


@command("set priority")
async def set_priority(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    pri = scan_int(argv[2])
    if pri is None:
        pri = s.runner.find_label(s.chan.context, s.chan.exten, argv[2])
        if pri is None or pri < 1:
            return RESULT_SHOWUSAGE
    s.runner.goto(None, None, pri)
    s.send("200 result=0\n")
    return RESULT_SUCCESS


@command("set callerid")
async def set_callerid(s: AgiSession, argv: list[str]) -> int:
    if len(argv) > 2:
        name, num = parse_callerid(argv[2][:255])
        s.chan.set_callerid(num="".join(c for c in num if c not in " -()."), name=name)
    s.send("200 result=1\n")
    return RESULT_SUCCESS


@command("set autohangup")
async def set_autohangup(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    try:
        seconds = max(0.0, float(argv[2].strip().split()[0]))
    except (ValueError, IndexError):
        return RESULT_SHOWUSAGE
    s.pbx.set_autohangup(s.chan, seconds)
    s.send("200 result=0\n")
    return RESULT_SUCCESS


@command("send text")
async def send_text(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    s.send("200 result=0\n")
    return RESULT_SUCCESS


@command("send image")
async def send_image(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    s.send("200 result=0\n")
    return RESULT_SUCCESS


@command("receive char")
async def receive_char(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    await s.chan.sleep(max(0, atoi(argv[2])) / 1000.0)
    s.send("200 result=-1 (hangup)\n")
    return RESULT_FAILURE


@command("receive text")
async def receive_text(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    await s.chan.sleep(max(0, atoi(argv[2])) / 1000.0)
    s.send("200 result=-1\n")
    return RESULT_SUCCESS


@command("tdd mode")
async def tdd_mode(s: AgiSession, argv: list[str]) -> int:
    if len(argv) != 3:
        return RESULT_SHOWUSAGE
    s.send("200 result=0\n")
    return RESULT_SUCCESS


@command("asyncagi break", dead=True)
async def asyncagi_break(s: AgiSession, argv: list[str]) -> int:
    s.send("200 result=0\n")
    return ASYNC_AGI_BREAK


def _speech(words: str, argc: tuple[int, ...], dead: bool = False) -> None:
    @command(words, dead=dead)
    async def handler(s: AgiSession, argv: list[str]) -> int:
        if argc and len(argv) not in argc:
            return RESULT_SHOWUSAGE
        s.send("200 result=0\n")
        return RESULT_SUCCESS


for _words, _argc, _dead in (
    ("speech create", (3,), False), ("speech set", (4,), False),
    ("speech destroy", (), True), ("speech load grammar", (5,), False),
    ("speech unload grammar", (4,), True), ("speech activate grammar", (4,), False),
    ("speech deactivate grammar", (4,), False), ("speech recognize", (4, 5, 6), False),
):
    _speech(_words, _argc, _dead)
