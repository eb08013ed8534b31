"""An asyncio TCP server with one tracked task per connection and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger(__name__)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class TcpService:
    """Base of the engine's servers (FastAGI, AudioSocket): listen, track, close."""

    name = "TCP service"

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError(f"{self.name} is not listening")
        return int(self._server.sockets[0].getsockname()[1])

    async def _listen(self, handler: Handler, host: str, port: int, limit: int) -> int:
        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Cut off by _stop (or the loop's end), the handler has cleaned up: end quietly.
            # Python 3.11's start_server asks each finished connection task for its
            # exception, which raises for a cancelled task: an asyncio ERROR per call.
            with contextlib.suppress(asyncio.CancelledError):
                await handler(reader, writer)

        self._server = await asyncio.start_server(connection, host=host, port=port,
                                                  limit=limit, backlog=1024)
        return self.port

    @contextlib.asynccontextmanager
    async def _connection(self, writer: asyncio.StreamWriter) -> AsyncIterator[int]:
        """Track the connection's task while it runs (yields how many are open); close the
        socket however it ends."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield len(self._tasks)
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _stop(self, grace_s: float = 0.0) -> None:
        """Stop accepting; give open connections ``grace_s``, then cancel them."""
        if self._server is not None:
            self._server.close()
        if self._tasks and grace_s > 0:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        if self._tasks:
            log.warning("%s: %d connections still open after %.0f s, cut off", self.name,
                        len(self._tasks), grace_s)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
