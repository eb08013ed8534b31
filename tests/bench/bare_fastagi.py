"""The protocol ceiling: a bare FastAGI server that sends a fixed command sequence.

No registry lookup, no storage, no Redis: only the environment block, the commands and their
replies over TCP. ``make bench`` compares the engine's throughput with this server's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class BareFastAgi:
    """Answers every FastAGI connection with ``commands``, reading one reply line each."""

    def __init__(self, commands: Sequence[str]) -> None:
        self.commands = [f"{command}\n".encode() for command in commands]
        self.sessions = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\n", b""):
                pass
            for command in self.commands:
                writer.write(command)
                line = await reader.readline()
                while line == b"HANGUP\n":
                    line = await reader.readline()
                if not line:
                    break
            self.sessions += 1
        finally:
            writer.close()
