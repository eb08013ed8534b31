"""An in-memory Asterisk for FastAGI flow tests: scripted replies, no socket, no timing.

The flow under test gets a real :class:`ivr.agi.session.AgiSession` on a real
``asyncio.StreamReader``/``StreamWriter`` pair whose transport is :class:`ScriptedAsterisk`.
Each command line the flow writes is checked word by word (as Asterisk's parser splits it)
against the next step of the script, and that step's reply lines are fed to the reader at
once, so the session reads them exactly as it would from the socket. A command the script
does not expect fails the test with the command and what was expected instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.agi.environment import read_environment
from ivr.agi.errors import AgiHangup
from ivr.agi.server import READ_LIMIT
from ivr.agi.session import AgiSession
from tests.agi_peer import environment
from tests.traces import agi_words

CLOSE = "<closed by Asterisk>"  # as a reply line: Asterisk closes the socket (caller gone)
DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
TIMEOUT = "200 result= (timeout)"  # GET DATA: no key before the timeout
ANY = "<any>"  # as a word of a scripted command: matches any one word (an order number)


@dataclass(frozen=True, slots=True)
class Step:
    """One command the flow must send next and Asterisk's reply lines to it."""

    command: str
    reply: tuple[str, ...]


def step(command: str, *reply: str) -> Step:
    """``step("GET DATA hotline/zh/menu_main 8000 1", "200 result=1")``."""
    return Step(command, reply)


class ScriptedAsterisk(asyncio.Transport):
    """The Asterisk end of one FastAGI session, answering from a script."""

    def __init__(self, script: Sequence[Step]) -> None:
        super().__init__()
        self._script: deque[Step] = deque(script)
        self._partial = b""
        self.sent: list[str] = []  # every command line the flow wrote, in order
        self.failure: str | None = None
        self.released = False  # the flow closed its end (AgiSession.release, or it ended)
        self.reader = asyncio.StreamReader(limit=READ_LIMIT)
        protocol = asyncio.StreamReaderProtocol(self.reader)
        protocol.connection_made(self)
        self.writer = asyncio.StreamWriter(self, protocol, self.reader,
                                           asyncio.get_running_loop())

    async def session(self, script_name: str, callerid: str = "13800138000",
                      uniqueid: str = "1795346825.0") -> AgiSession:
        """The session the engine's FastAGI server would make for this call: Asterisk 22's
        environment block, read by the engine's own parser."""
        env = environment(script_name, callerid=callerid, uniqueid=uniqueid)
        self.reader.feed_data("".join(f"{line}\n" for line in [*env, ""]).encode("utf-8"))
        parsed = await read_environment(self.reader, timeout_s=1.0, max_bytes=READ_LIMIT)
        return AgiSession(parsed, self.reader, self.writer, reply_timeout_s=1.0)

    async def serve(self, flow: Callable[[AgiSession], Awaitable[None]], script_name: str,
                    callerid: str = "13800138000") -> None:
        """Run ``flow`` on this call as the engine's FastAGI server does (a hang-up that
        leaves the flow ends the call normally), then :meth:`check_done`."""
        session = await self.session(script_name, callerid=callerid)
        with contextlib.suppress(AgiHangup):
            await flow(session)
        self.check_done()

    def check_done(self) -> None:
        """Fail unless every scripted command was sent and nothing unexpected was."""
        assert self.failure is None, self.failure
        left = [s.command for s in self._script]
        assert not left, f"the flow ended before sending {left}; it sent {self.sent}"

    # -- asyncio.Transport ----------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.released:
            self._fail(f"command after the session was released: {bytes(data)!r}")
        if self.reader.at_eof():
            raise ConnectionResetError("Asterisk closed the connection")
        self._partial += bytes(data)
        while b"\n" in self._partial:
            line, _, self._partial = self._partial.partition(b"\n")
            self._answer(line.decode("utf-8"))

    def close(self) -> None:
        self.released = True

    def is_closing(self) -> bool:
        return self.released

    def get_write_buffer_size(self) -> int:
        return 0  # every line is answered as it is written

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 4573)}.get(name, default)

    # -- the script -----------------------------------------------------------------------

    def _answer(self, line: str) -> None:
        self.sent.append(line)
        if not self._script:
            self._fail(f"unexpected command {line!r}: the script has ended")
        expected = self._script.popleft()
        if not _same_words(agi_words(line), agi_words(expected.command)):
            self._fail(f"expected {expected.command!r}, the flow sent {line!r}")
        for reply in expected.reply:
            if reply == CLOSE:
                self.reader.feed_eof()
                return
            self.reader.feed_data(f"{reply}\n".encode())

    def _fail(self, message: str) -> None:
        self.failure = self.failure or f"{message} (sent so far: {self.sent})"
        raise AssertionError(self.failure)


def _same_words(sent: list[str], expected: list[str]) -> bool:
    return len(sent) == len(expected) and all(
        want in (got, ANY) for got, want in zip(sent, expected, strict=True))
