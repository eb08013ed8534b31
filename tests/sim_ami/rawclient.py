"""A minimal AMI client over raw TCP, to look at exactly what the server sends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Message(list[tuple[str, str]]):
    """Headers of one received message, in order."""

    def get(self, name: str, default: str = "") -> str:
        return next((v for k, v in self if k == name), default)

    @property
    def names(self) -> list[str]:
        return [k for k, _ in self]


class RawAmi:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawAmi:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        banner = await asyncio.wait_for(reader.readline(), 5)
        assert banner == b"Asterisk Call Manager/11.0.0\r\n", banner
        return cls(reader, writer)

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, *pairs: tuple[str, str]) -> None:
        await self.send_raw(b"".join(f"{k}: {v}\r\n".encode() for k, v in pairs) + b"\r\n")

    async def read(self, timeout: float = 5.0) -> Message:
        message = Message()
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                raise EOFError(f"server closed the connection after {message!r}")
            assert line.endswith(b"\r\n"), line
            text = line[:-2].decode("utf-8")
            if not text:
                return message
            name, _, value = text.partition(": ")
            message.append((name, value))

    async def request(self, *pairs: tuple[str, str]) -> Message:
        """Send an action and return the next message that is not an event."""
        await self.send(*pairs)
        return await self.read_until(lambda m: bool(m) and m[0][0] == "Response")

    async def read_until(self, predicate: Callable[[Message], bool],
                         timeout: float = 5.0) -> Message:
        while True:
            message = await self.read(timeout)
            if predicate(message):
                return message

    async def login(self, username: str = "hotline", secret: str = "s3cret",
                    events: str = "on") -> Message:
        reply = await self.request(("Action", "Login"), ("Username", username),
                                    ("Secret", secret), ("Events", events))
        assert reply.get("Message") == "Authentication accepted", reply
        return reply

    async def at_eof(self, timeout: float = 5.0) -> bool:
        rest = await asyncio.wait_for(self.reader.read(), timeout)
        return rest == b""

    def close(self) -> None:
        self.writer.close()
