"""The engine's AudioSocket server: caller audio from Asterisk's AudioSocket application.

A call's FastAGI flow asks for a stream with ``expect(uuid)`` and then runs
``EXEC AudioSocket <uuid>,<host>:<port>``. Asterisk connects, sends one UUID frame (kind 0x01)
and then 20 ms frames of 8 kHz signed-linear audio (0x10) and DTMF (0x03) until the call hangs
up (the socket simply closes) or a hangup frame (0x00) arrives. Every read is bounded in time
and size; a malformed frame ends that one connection with a logged reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import uuid
from collections import deque
from dataclasses import dataclass

from ivr.config import SpeechSettings
from ivr.tcp_service import TcpService

log = logging.getLogger(__name__)

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF
HEADER = struct.Struct("!BH")
FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit mono
MAX_AUDIO_BYTES = 8000  # 0.5 s: far above any frame Asterisk sends
MAX_ERROR_BYTES = 256
DTMF_DIGITS = frozenset("0123456789*#ABCD")
WRITE_TIMEOUT_S = 5.0


class AudioSocketError(Exception):
    """The peer broke the protocol, stalled or went away; the message says how."""


@dataclass(frozen=True)
class Dtmf:
    """A key the caller pressed while the audio streamed."""

    digit: str


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    """One frame: kind byte, big-endian length, payload."""
    if not 0 <= kind <= 0xFF or len(payload) > 0xFFFF:
        raise ValueError("AudioSocket frame kind or length out of range")
    return HEADER.pack(kind, len(payload)) + payload


def _check(kind: int, length: int) -> None:
    limits = {
        KIND_HANGUP: (0, 0),
        KIND_UUID: (16, 16),
        KIND_DTMF: (1, 1),
        KIND_AUDIO: (2, MAX_AUDIO_BYTES),
        KIND_ERROR: (0, MAX_ERROR_BYTES),
    }
    if kind not in limits:
        raise AudioSocketError(f"unknown frame kind 0x{kind:02x} (length {length})")
    low, high = limits[kind]
    if not low <= length <= high or (kind == KIND_AUDIO and length % 2):
        raise AudioSocketError(f"bad length {length} for frame kind 0x{kind:02x}")


async def read_frame(reader: asyncio.StreamReader, timeout_s: float) -> tuple[int, bytes] | None:
    """The next frame as (kind, payload); None on a clean end of stream between frames."""
    try:
        async with asyncio.timeout(timeout_s):
            header = await reader.readexactly(HEADER.size)
            kind, length = HEADER.unpack(header)
            _check(kind, length)
            payload = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError as exc:
        if not exc.partial and exc.expected == HEADER.size:
            return None
        raise AudioSocketError("connection closed inside a frame") from None
    except TimeoutError:
        raise AudioSocketError(f"no frame within {timeout_s:g} s") from None
    except (ConnectionError, OSError) as exc:
        raise AudioSocketError(f"connection failed: {exc}") from None
    if kind == KIND_DTMF and payload.decode("latin-1") not in DTMF_DIGITS:
        raise AudioSocketError(f"bad DTMF digit {payload!r}")
    return kind, payload


class AudioStream:
    """One call's audio: an async iterator of PCM frames (bytes) and ``Dtmf`` events.

    Iteration ends when the call hangs up, the socket closes, the peer misbehaves or the
    engine closes the stream; ``reason`` then says which. Frames are buffered up to
    ``max_frames``; beyond that the socket is not read (TCP pushes back on the peer).
    """

    def __init__(self, call_id: uuid.UUID, max_frames: int) -> None:
        self.call_id = call_id
        self.reason: str | None = None
        self.frames_received = 0
        self._items: deque[bytes | Dtmf] = deque()
        self._max = max_frames
        self._wakeup = asyncio.Event()
        self._room = asyncio.Event()
        self._connected = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def ended(self) -> bool:
        return self.reason is not None

    async def wait_connected(self, timeout_s: float) -> bool:
        """True once Asterisk has connected; False if it has not within ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._connected.wait()
        return self.connected

    def __aiter__(self) -> AudioStream:
        return self

    async def __anext__(self) -> bytes | Dtmf:
        while not self._items:
            if self.ended:
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        self._room.set()
        return self._items.popleft()

    async def send_audio(self, pcm: bytes) -> None:
        """Play 8 kHz 16-bit mono audio to the caller, cut into 20 ms frames."""
        data = b"".join(
            encode_frame(KIND_AUDIO, pcm[i : i + FRAME_BYTES])
            for i in range(0, len(pcm) - len(pcm) % 2, FRAME_BYTES)
        )
        await self._write(data)

    async def hangup(self) -> None:
        """Ask Asterisk to end the AudioSocket application, then close."""
        with contextlib.suppress(AudioSocketError):
            await self._write(encode_frame(KIND_HANGUP))
        self.close("closed")

    def close(self, reason: str = "closed") -> None:
        """Stop listening; the socket closes and the dialplan continues."""
        self._end(reason)
        if self._writer is not None:
            self._writer.close()

    async def _write(self, data: bytes) -> None:
        if self._writer is None or self.ended or self._writer.is_closing():
            raise AudioSocketError("stream is not connected")
        try:
            self._writer.write(data)
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self._writer.drain()
        except (TimeoutError, ConnectionError, OSError) as exc:
            self.close("write failed")
            raise AudioSocketError(f"could not send to AudioSocket peer: {exc!r}") from None

    def _end(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._wakeup.set()
        self._room.set()

    async def _push(self, item: bytes | Dtmf) -> None:
        while len(self._items) >= self._max and not self.ended:
            self._room.clear()
            await self._room.wait()
        if not self.ended:
            self._items.append(item)
            self._wakeup.set()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle_timeout_s: float
    ) -> None:
        """Move frames from the socket into the stream until the call ends."""
        self._writer = writer
        self._connected.set()
        try:
            while not self.ended:
                frame = await read_frame(reader, idle_timeout_s)
                if frame is None:
                    self._end("eof")
                    break
                kind, payload = frame
                if kind == KIND_AUDIO:
                    self.frames_received += 1
                    await self._push(payload)
                elif kind == KIND_DTMF:
                    await self._push(Dtmf(payload.decode("ascii")))
                elif kind == KIND_HANGUP:
                    self._end("hangup")
                elif kind == KIND_ERROR:
                    self._end(f"peer error {payload.hex() or '(no code)'}")
                else:
                    raise AudioSocketError(f"unexpected frame kind 0x{kind:02x} after the UUID")
        except AudioSocketError as exc:
            if not self.ended:
                log.warning("AudioSocket %s closed: %s", self.call_id, exc)
            self._end(f"protocol: {exc}")
        finally:
            self._end("eof")


class AudioSocketServer(TcpService):
    """Accepts Asterisk's AudioSocket connections and hands each to the call expecting it."""

    name = "AudioSocket server"

    def __init__(
        self,
        settings: SpeechSettings,
        *,
        uuid_timeout_s: float = 5.0,
        idle_timeout_s: float = 5.0,
        max_frames: int = 250,
        max_connections: int = 10_000,
    ) -> None:
        super().__init__()
        self._settings = settings
        self.uuid_timeout_s = uuid_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self._max_frames = max_frames
        self._max_connections = max_connections
        self._expected: dict[uuid.UUID, AudioStream] = {}
        self.rejected = 0

    @property
    def address(self) -> str:
        """``host:port`` as the AudioSocket application takes it."""
        return f"{self._settings.host}:{self.port}"

    async def start(self) -> int:
        await self._listen(self._on_connection, self._settings.host, self._settings.port,
                           MAX_AUDIO_BYTES * 2)
        log.info("AudioSocket listening on %s", self.address)
        return self.port

    def expect(self, call_id: str | uuid.UUID, connect_timeout_s: float = 10.0) -> AudioStream:
        """Register a stream for ``call_id``; it ends with reason ``not connected`` if Asterisk
        has not connected within ``connect_timeout_s``."""
        key = call_id if isinstance(call_id, uuid.UUID) else uuid.UUID(call_id)
        if key in self._expected:
            raise ValueError(f"AudioSocket call {key} is already expected")
        stream = AudioStream(key, self._max_frames)
        self._expected[key] = stream
        asyncio.get_running_loop().call_later(connect_timeout_s, self._expire, key, stream)
        return stream

    def _expire(self, key: uuid.UUID, stream: AudioStream) -> None:
        if self._expected.get(key) is stream:
            del self._expected[key]
        if not stream.connected:
            stream.close("not connected")

    async def close(self) -> None:
        for stream in list(self._expected.values()):
            stream.close("server closed")
        self._expected.clear()
        await self._stop()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        async with self._connection(writer) as open_connections:
            if open_connections > self._max_connections:
                self.rejected += 1
                log.error("AudioSocket refused: %d connections open", self._max_connections)
                return
            stream = await self._claim(reader)
            if stream is not None:
                await stream._pump(reader, writer, self.idle_timeout_s)

    async def _claim(self, reader: asyncio.StreamReader) -> AudioStream | None:
        """Read the UUID frame and take the stream expecting it; None (logged) otherwise."""
        try:
            frame = await read_frame(reader, self.uuid_timeout_s)
        except AudioSocketError as exc:
            frame, reason = None, str(exc)
        else:
            reason = "closed before the UUID frame"
        if frame is not None and frame[0] != KIND_UUID:
            reason = f"first frame is kind 0x{frame[0]:02x}, not the UUID"
        elif frame is not None:
            key = uuid.UUID(bytes=frame[1])
            stream = self._expected.pop(key, None)
            if stream is not None and not stream.ended:
                return stream
            reason = f"no call expects {key}"
        self.rejected += 1
        log.warning("AudioSocket connection dropped: %s", reason)
        return None
