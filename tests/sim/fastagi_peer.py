"""A scripted FastAGI server for the simulator tests: it accepts the simulator's connection,
reads the environment, sends fixed commands and records every line in trace form."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

LINE_TIMEOUT = 20.0
FINAL = ("200 ", "510 ", "511 ", "520 ")


@dataclass
class Session:
    env: list[str] = field(default_factory=list)
    transcript: list[tuple[str, str]] = field(default_factory=list)
    replies: list[list[str]] = field(default_factory=list)


class FastAgiPeer:
    """Serves ``script`` (a list of command lines) to each connection, in order."""

    def __init__(self, script: Sequence[str], hold_open: float = 0.0) -> None:
        self.script = list(script)
        self.hold_open = hold_open
        self.sessions: list[Session] = []
        self.done = asyncio.Event()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> FastAgiPeer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session()
        self.sessions.append(session)
        try:
            while True:
                line = await self._line(reader, session)
                if line is None or line == "":
                    break
                session.env.append(line)
            for command in self.script:
                writer.write(command.encode("utf-8") + b"\n")
                await writer.drain()
                session.transcript.append(("C", command))
                reply: list[str] = []
                while True:
                    line = await self._line(reader, session)
                    if line is None:
                        break
                    if line == "HANGUP":
                        continue
                    reply.append(line)
                    if line.startswith(FINAL):
                        break
                session.replies.append(reply)
                if line is None:
                    break
            if self.hold_open:
                await asyncio.sleep(self.hold_open)
        finally:
            session.transcript.append(("S", "<closed by engine>"))
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self.done.set()

    @staticmethod
    async def _line(reader: asyncio.StreamReader, session: Session) -> str | None:
        raw = await asyncio.wait_for(reader.readline(), LINE_TIMEOUT)
        if not raw:
            session.transcript.append(("S", "<eof>"))
            return None
        text = raw.decode("utf-8")
        assert text.endswith("\n") and not text.endswith("\r\n"), f"bad line ending {raw!r}"
        session.transcript.append(("S", text[:-1]))
        return text[:-1]
