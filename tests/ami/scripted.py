"""A scripted AMI peer on real TCP: each test decides exactly which bytes go out and when."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
SECRET = "s3cret"
FULLY_BOOTED = (
    b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 5\r\nLastReload: 5\r\n"
    b"Status: Fully Booted\r\n\r\n"
)


def frame(*pairs: tuple[str, str]) -> bytes:
    """One AMI message, exactly as Asterisk writes it."""
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in pairs) + b"\r\n"


class Received:
    """One message the peer read from the client."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.pairs if k.lower() == name.lower()), default)

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k.lower() == name.lower()]

    @property
    def action(self) -> str:
        return self.get("Action")

    def __repr__(self) -> str:
        return f"Received({self.pairs!r})"


class Peer:
    """One accepted connection as the scripted server sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.messages: list[Received] = []

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_message(self, timeout: float = 5.0) -> Received:
        pairs: list[tuple[str, str]] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                raise EOFError("client closed the connection")
            text = line.decode("utf-8").rstrip("\r\n")
            if not text:
                if pairs:
                    break
                continue
            name, _, value = text.partition(":")
            pairs.append((name, value.lstrip(" ")))
        message = Received(pairs)
        self.messages.append(message)
        return message

    async def reply(self, request: Received, *pairs: tuple[str, str]) -> None:
        head = [pairs[0], ("ActionID", request.get("ActionID")), *pairs[1:]]
        await self.send(frame(*head))

    async def accept_login(self, *, challenge: str = "212989870", fully_booted: bool = True,
                           ) -> None:
        """Banner, then Challenge/Login (MD5 or plain) checked against SECRET."""
        await self.send(BANNER)
        request = await self.read_message()
        if request.action == "Challenge":
            await self.reply(request, ("Response", "Success"), ("Challenge", challenge))
            request = await self.read_message()
            expected = hashlib.md5((challenge + SECRET).encode()).hexdigest()
            ok = request.get("Key") == expected and not request.get("Secret")
        else:
            ok = request.get("Secret") == SECRET
        assert request.action == "Login", request
        if not ok:
            await self.reply(request, ("Response", "Error"), ("Message", "Authentication failed"))
            self.writer.close()
            raise AssertionError(f"bad login {request}")
        await self.reply(request, ("Response", "Success"), ("Message", "Authentication accepted"))
        if fully_booted:
            await self.send(FULLY_BOOTED)

    async def serve_pings(self) -> None:
        """Answer Pings (and nothing else) until the client goes away."""
        with contextlib.suppress(EOFError, ConnectionError, asyncio.TimeoutError):
            while True:
                request = await self.read_message(timeout=30)
                if request.action == "Ping":
                    await self.reply(request, ("Response", "Success"), ("Ping", "Pong"),
                                     ("Timestamp", "1795346823.462355"))

    def close(self) -> None:
        self.writer.close()


Script = Callable[[Peer, int], Awaitable[None]]


class ScriptedAmi:
    """TCP server on 127.0.0.1 running ``script(peer, index)`` for each connection."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self.peers: list[Peer] = []
        self.errors: list[BaseException] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connected = asyncio.Condition()

    async def __aenter__(self) -> ScriptedAmi:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for peer in self.peers:
            peer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def wait_peers(self, count: int, timeout: float = 5.0) -> None:
        async with self.connected:
            await asyncio.wait_for(self.connected.wait_for(lambda: len(self.peers) >= count),
                                   timeout)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer)
        index = len(self.peers)
        self.peers.append(peer)
        async with self.connected:
            self.connected.notify_all()
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._script(peer, index)
        except (EOFError, ConnectionError, asyncio.CancelledError):
            pass
        except BaseException as exc:  # surfaced by the test through .errors
            self.errors.append(exc)
        finally:
            self._tasks.discard(task)
