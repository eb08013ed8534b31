"""AudioSocket(uuid,host:port): stream the caller's audio to a TCP server, as Asterisk does.

After connecting, the channel sends one UUID frame (kind 0x01, 16 bytes), then a 20 ms frame
of 8 kHz signed-linear audio (0x10, 320 bytes) every 20 ms of simulated time (the faint hiss
of a quiet line while the caller is not speaking) and a DTMF frame (0x03) per key. The
party's next script step is consumed here: ``say`` steps are heard, ``press`` steps become
DTMF frames. On hangup the socket simply closes; a hangup frame (0x00) from the server ends
the application with 0, a closed socket or an error frame with -1.

Each run is reported in the call's result under ``audiosocket``: when it started and ended
(simulated time), how many seconds of audio the server played to the caller (``heard_s``),
when the caller spoke and pressed keys (seconds from the start), how it ended, its result.
"""

from __future__ import annotations

import logging
import struct
import uuid
from typing import Any

from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import connectProtocol

from sim.agi.client import _endpoint
from sim.apps.registry import AppContext, application
from sim.channel import State
from sim.dialplan.args import split_args
from sim.voice import line_noise

log = logging.getLogger(__name__)

HEADER = struct.Struct("!BH")
KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
FRAME_S = 0.02
FRAME_BYTES = 320
MAX_FRAMES_PER_TICK = 500


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


class _Link(protocol.Protocol):
    """The socket to the server: counts the audio it plays back, notices its hangup."""

    def __init__(self) -> None:
        self.buffer = b""
        self.ended_by = "closed"
        self.frames_heard = 0
        self.bytes_heard = 0
        self.lost: Deferred = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < HEADER.size + length:
                return
            self.buffer = self.buffer[HEADER.size + length :]
            if kind == KIND_AUDIO:
                self.frames_heard += 1
                self.bytes_heard += length
            elif kind in (KIND_HANGUP, KIND_ERROR):
                self.ended_by = "hangup" if kind == KIND_HANGUP else "error"
                self.close()
                return
            else:
                log.warning("AudioSocket server sent an unexpected frame kind 0x%02x", kind)

    def connectionLost(self, reason: Any = None) -> None:
        if not self.lost.called:
            self.lost.callback(self.ended_by)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.lost.called:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()


class _Mouth:
    """Sends one audio frame per 20 ms of simulated time: speech if any is queued, else silence.

    Under a fast clock a timer tick may be late; each tick sends every frame that is due.
    """

    def __init__(self, ctx: AppContext, link: _Link) -> None:
        self.clock = ctx.pbx.clock
        self.link = link
        self.start = self.clock.elapsed()
        self.sent = 0
        self.speech = bytearray()
        self.timer: Any = None
        self.said: list[list[float]] = []
        self.pressed: list[list[Any]] = []
        self._schedule()

    def offset(self) -> float:
        return round(self.clock.elapsed() - self.start, 3)

    def say(self, audio: bytes) -> None:
        self.said.append([self.offset(), round(len(audio) / (2 * 8000), 3)])
        self.speech += audio

    def press(self, digit: str, at: float) -> bool:
        """A key at ``at`` simulated seconds from the start: the frames due by then go first,
        so a timer that fired late on a busy machine does not put more audio before it."""
        self.flush(at)
        self.pressed.append([round(at, 3), digit])
        self.link.send(frame(KIND_DTMF, digit.encode("ascii")))
        return False  # keys never stop the application

    def flush(self, at: float | None = None) -> None:
        """Send the frames due by ``at`` simulated seconds from the start (default: now)."""
        until = self.clock.elapsed() - self.start if at is None else at
        due = int(until / FRAME_S + 1e-9)
        count = min(due - self.sent, MAX_FRAMES_PER_TICK)
        if count <= 0:
            return
        out = []
        for index in range(self.sent, self.sent + count):
            chunk = bytes(self.speech[:FRAME_BYTES])
            del self.speech[:FRAME_BYTES]
            hiss = line_noise(FRAME_BYTES - len(chunk), index * FRAME_BYTES)
            out.append(frame(KIND_AUDIO, chunk + hiss))
        self.sent += count
        self.link.send(b"".join(out))

    def _tick(self) -> None:
        self.flush()
        self._schedule()

    def _schedule(self) -> None:
        self.timer = self.clock.call_later(FRAME_S, self._tick)

    def stop(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()


def _service(text: str) -> tuple[str, int] | None:
    host, _, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


@application("AudioSocket")
async def audiosocket(ctx: AppContext, data: str) -> int:
    args = split_args(data)
    if not args or not args[0].strip():
        log.error("UUID is required")
        return -1
    try:
        call_id = uuid.UUID(args[0].strip())
    except ValueError:
        log.error("Failed to parse UUID '%s'", args[0].strip())
        return -1
    service = _service(args[1]) if len(args) > 1 else None
    if service is None:
        log.error("Service is required and must be host:port")
        return -1
    chan = ctx.chan
    if chan.hungup:
        return -1
    if chan.state != State.UP:
        chan.answer()
    endpoint = _endpoint(ctx.pbx.reactor, *service, ctx.pbx.settings.agi_connect_timeout)
    try:
        link = await connectProtocol(endpoint, _Link())
    except Exception as exc:
        log.error("Could not connect to AudioSocket server %s:%d: %s", *service, exc)
        return -1
    link.send(frame(KIND_UUID, call_id.bytes))
    mouth = _Mouth(ctx, link)
    report: dict[str, Any] = {"started_at": ctx.pbx.clock.stamp()}
    if chan.record is not None:
        chan.record.audiosocket.append(report)
    win = chan.window(opportunity=True)
    win.speaker = mouth.say
    lead = win.start - mouth.start  # the window opened this long after the first frame's time

    def press(digit: str) -> bool:  # at the key's nominal moment in the window
        return mouth.press(digit, lead + win.position)

    try:
        result = await win.wait(None, stop=press, until=link.lost)
    finally:
        win.close()
        mouth.stop()
        link.close()
    code = -1 if result.kind == "hangup" or link.ended_by != "hangup" else 0
    report.update(ended_at=ctx.pbx.clock.stamp(), heard_s=round(link.bytes_heard / 16000, 3),
                  said=mouth.said, pressed=mouth.pressed,
                  ended_by="caller" if result.kind == "hangup" else link.ended_by, result=code)
    return code
