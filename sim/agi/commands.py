"""AGI command lines: Asterisk's word splitting, command lookup and result bookkeeping.

Handlers return RESULT_SUCCESS, RESULT_SHOWUSAGE, RESULT_FAILURE, ASYNC_AGI_BREAK or any other
integer (EXEC returns the application's value, shown as "Unknown Result" in AGIExecEnd).
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sim import events as ev
from sim.agi.usage import USAGE

if TYPE_CHECKING:
    from sim.agi.session import AgiSession

RESULT_SUCCESS = 0
RESULT_SHOWUSAGE = 1
RESULT_FAILURE = 2
ASYNC_AGI_BREAK = 3
MAX_ARGS = 128

Handler = Callable[["AgiSession", list[str]], Awaitable[int]]


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    handler: Handler
    dead: bool

    @property
    def name(self) -> str:
        return " ".join(self.words)


COMMANDS: list[Command] = []


_BY_FIRST_WORD: dict[str, list[Command]] = {}


def command(words: str, dead: bool = False) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        cmd = Command(tuple(words.split()), fn, dead)
        COMMANDS.append(cmd)
        _BY_FIRST_WORD.setdefault(cmd.words[0], []).append(cmd)
        return fn

    return register


_BLANKS = re.compile(r"[ \t]+")


def parse_args(line: str) -> list[str]:
    """res_agi.c parse_args: spaces/tabs split words, ``"`` quotes, ``\\`` escapes."""
    if '"' not in line and "\\" not in line:
        return [w for w in _BLANKS.split(line) if w][: MAX_ARGS - 1]
    out: list[str] = []
    starts: list[int] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        literal = False
        if ch == '"':
            if escaped:
                literal = True
            else:
                quoted = not quoted
                if quoted and whitespace:
                    starts.append(len(out))
                    whitespace = False
                escaped = False
        elif ch in " \t":
            if not quoted and not escaped:
                whitespace = True
                out.append("\0")
            else:
                literal = True
        elif ch == "\\":
            if escaped:
                literal = True
            else:
                escaped = True
        else:
            literal = True
        if literal:
            if whitespace:
                if len(starts) >= MAX_ARGS - 1:
                    continue
                starts.append(len(out))
                whitespace = False
            out.append(ch)
            escaped = False
    out.append("\0")
    text = "".join(out)
    return [text[i : text.index("\0", i)] for i in starts]


def find_command(argv: list[str]) -> Command | None:
    """find_command(cmds, exact=0): extra words after a full command still match."""
    if not argv:
        return None
    words = [a.lower() for a in argv[:4]]
    for cmd in _BY_FIRST_WORD.get(words[0], ()):
        n = len(cmd.words)
        if len(words) >= n and tuple(words[:n]) == cmd.words:
            return cmd
    return None


def _exec_event(session: AgiSession, name: str, command_id: int, line: str,
                *extra: tuple[str, str]) -> None:
    if not session.chan.observed:
        return
    session.chan.emit(ev.channel_event(
        name, ev.AGI, session.chan, ("CommandId", str(command_id)), ("Command", line), *extra
    ))


async def execute(session: AgiSession, line: str) -> bool:
    """Run one command line; True when it failed in Asterisk's sense (AGI_RESULT_FAILURE)."""
    command_id = random.getrandbits(31)
    _exec_event(session, "AGIExecStart", command_id, line)

    def end(code: int, result: str) -> None:
        _exec_event(session, "AGIExecEnd", command_id, line, ("ResultCode", str(code)),
                    ("Result", result))

    argv = parse_args(line)
    cmd = find_command(argv)
    if cmd is None:
        session.send("510 Invalid or unknown command\n")
        end(510, "Invalid or unknown command")
        return False
    if session.dead and not cmd.dead:
        session.send("511 Command Not Permitted on a dead channel or intercept routine\n")
        end(511, "Command Not Permitted on a dead channel or intercept routine")
        return False
    res = await cmd.handler(session, argv)
    if res == RESULT_SHOWUSAGE:
        end(520, "Usage")
        usage = USAGE.get(cmd.name, "")
        if usage:
            session.send(
                f"520-Invalid command syntax.  Proper usage follows:\n{usage}\n"
                "520 End of proper usage.\n"
            )
        else:
            session.send("520 Invalid command syntax.  Proper usage not available.\n")
        return False
    if res == RESULT_FAILURE:
        end(-1, "Failure")
        return True
    if res in (RESULT_SUCCESS, ASYNC_AGI_BREAK):
        end(200, "Success")
        return False
    end(200, "Unknown Result")
    return False


def _register_all() -> None:
    from sim.agi import media_commands, misc_commands  # noqa: F401


_register_all()
