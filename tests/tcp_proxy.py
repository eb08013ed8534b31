"""A TCP relay between the engine and a server that a test can cut and restore, to stand for
a network fault: ``cut`` closes both sides of every relayed connection and, until
``restore``, closes new connections as soon as they are accepted. ``hold_replies_after``
stops the server's replies once the client has sent a chosen byte string (the client is
then waiting for that request's answer: a deterministic place to cancel it)."""

from __future__ import annotations

import asyncio
import contextlib


class CuttableProxy:
    """Relays 127.0.0.1:``port`` to 127.0.0.1:``target_port``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.open = True
        self.relayed = 0  # connections relayed to the target so far
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._replies = asyncio.Event()  # set: the server's bytes flow to the client
        self._replies.set()
        self._marker: bytes | None = None
        self.marker_sent = asyncio.Event()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def cut(self) -> None:
        """Close both sides of every connection; refuse new ones until ``restore``."""
        self.open = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.open = True

    def hold_replies_after(self, marker: bytes) -> None:
        """Once a client sends ``marker``, hold every reply (``marker_sent`` is set then)
        until ``release_replies``."""
        self.marker_sent.clear()
        self._marker = marker

    def release_replies(self) -> None:
        self._marker = None
        self._replies.set()

    async def _up(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                if self._marker is not None and self._marker in data:
                    self._replies.clear()
                    self.marker_sent.set()
                writer.write(data)
                await writer.drain()

    async def _down(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                await self._replies.wait()
                writer.write(data)
                await writer.drain()

    async def close(self) -> None:
        await self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        if not self.open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.relayed += 1
        self._writers.update((writer, up_writer))
        pumps = [asyncio.create_task(self._up(reader, up_writer)),
                 asyncio.create_task(self._down(up_reader, writer))]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for side in (writer, up_writer):
            side.transport.abort()
            self._writers.discard(side)
        for pump in pumps:
            pump.cancel()
            self._tasks.discard(pump)

