"""A scripted Asterisk side of FastAGI over real TCP, for testing the engine's server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from tests.traces import agi_words


class AsteriskPeer:
    """Connects to a FastAGI server like Asterisk does and answers commands from a script."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received: list[str] = []

    @classmethod
    async def connect(cls, port: int) -> AsteriskPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send_lines(self, lines: Sequence[str]) -> None:
        self.writer.write("".join(f"{line}\n" for line in lines).encode("utf-8"))
        await self.writer.drain()

    async def send_environment(self, env: Sequence[str]) -> None:
        await self.send_lines([*env, ""])

    async def read_command(self, timeout: float = 5.0) -> str | None:
        """Next command line from the engine, or None at EOF."""
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            return None
        line = raw.decode("utf-8").rstrip("\n")
        self.received.append(line)
        return line

    async def expect(self, command: str, reply: Sequence[str]) -> None:
        """Read one command, check it word by word against ``command``, answer ``reply``."""
        got = await self.read_command()
        assert got is not None, f"engine closed the connection, expected {command!r}"
        assert agi_words(got) == agi_words(command), f"expected {command!r}, got {got!r}"
        await self.send_lines(reply)

    async def read_until_eof(self, timeout: float = 5.0) -> list[str]:
        rest = []
        while (line := await self.read_command(timeout)) is not None:
            rest.append(line)
        return rest

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def environment(script: str, callerid: str = "13800138000", name: str = "unknown",
                uniqueid: str = "1795346825.0") -> list[str]:
    """An environment block in Asterisk 22's exact key order."""
    return [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:4573/{script}",
        "agi_channel: PJSIP/trunk-00000001",
        "agi_language: zh",
        "agi_type: PJSIP",
        f"agi_uniqueid: {uniqueid}",
        "agi_version: 22.10.1",
        f"agi_callerid: {callerid}",
        f"agi_calleridname: {name}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: 12349",
        "agi_rdnis: unknown",
        "agi_context: from-pstn",
        "agi_extension: 12349",
        "agi_priority: 4",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140319959434944",
    ]
