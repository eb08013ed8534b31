"""Caller audio over AudioSocket: the engine's server on the wire, and the simulator's
AudioSocket application streaming real synthesised speech to real Vosk recognition.

Protocol tests play Asterisk's part with a raw asyncio TCP peer sending the frame layout of
asterisk-traces/audiosocket.frames.txt (one UUID frame, 320-byte audio frames, DTMF, and at
hangup simply the end of the stream). End-to-end tests run the simulator as a separate
process; the engine's FastAGI route issues ``EXEC AudioSocket <uuid>,127.0.0.1:<port>``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from ivr.agi.server import FastAgiServer
from ivr.agi.session import AgiSession
from ivr.audio import pcm_to_wav
from ivr.audiosocket import (
    FRAME_BYTES,
    KIND_AUDIO,
    KIND_DTMF,
    KIND_HANGUP,
    KIND_UUID,
    AudioSocketError,
    AudioSocketServer,
    AudioStream,
    Dtmf,
    encode_frame,
    read_frame,
)
from ivr.config import AgiSettings, SpeechSettings
from ivr.demo.simproc import SimulatorProcess
from ivr.speech import Recognition, SpeechEngine, load_grammars
from sim.parties import PartyError, parse_step
from tests.callstack import until
from tests.speech_audio import KO_MODEL_PATH, korean_call_audio

AUDIO = bytes(range(256)) + bytes(64)  # 320 recognisable bytes
assert len(AUDIO) == FRAME_BYTES


def frame(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack("!BH", kind, len(payload)) + payload


@pytest_asyncio.fixture
async def server() -> AsyncIterator[AudioSocketServer]:
    srv = AudioSocketServer(SpeechSettings(port=0), uuid_timeout_s=0.5, idle_timeout_s=0.5)
    await srv.start()
    yield srv
    await srv.close()


async def peer(srv: AudioSocketServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", srv.port)


async def drain(stream: AudioStream) -> list[bytes | Dtmf]:
    async with asyncio.timeout(10):
        return [item async for item in stream]


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(5):
        return await reader.read(65536) == b""


# -- frames (pure logic) ----------------------------------------------------------------------


async def test_frame_reader_bounds() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(encode_frame(KIND_DTMF, b"#") + frame(KIND_AUDIO, AUDIO))
    reader.feed_eof()
    assert await read_frame(reader, 1) == (KIND_DTMF, b"#")
    assert await read_frame(reader, 1) == (KIND_AUDIO, AUDIO)
    assert await read_frame(reader, 1) is None
    for bad in (frame(0x42, b"x"), frame(KIND_AUDIO, b"abc"), frame(KIND_UUID, b"x" * 15),
                struct.pack("!BH", KIND_AUDIO, 60000), frame(KIND_DTMF, b"x"),
                frame(KIND_AUDIO, AUDIO)[:100]):
        reader = asyncio.StreamReader()
        reader.feed_data(bad)
        reader.feed_eof()
        with pytest.raises(AudioSocketError):
            await read_frame(reader, 1)
    with pytest.raises(ValueError):
        encode_frame(KIND_AUDIO, bytes(70000))


# -- the server against a raw peer ---------------------------------------------------------------


async def test_trace_layout_audio_dtmf_then_eof(server: AudioSocketServer) -> None:
    call = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")
    stream = server.expect(str(call))
    _reader, writer = await peer(server)
    writer.write(frame(KIND_UUID, call.bytes) + frame(KIND_AUDIO, AUDIO) * 3)
    writer.write(frame(KIND_DTMF, b"5") + frame(KIND_AUDIO, AUDIO) * 2)
    await writer.drain()
    assert await stream.wait_connected(5)
    writer.close()  # hangup: the socket simply closes, no 0x00 frame
    items = await drain(stream)
    assert items == [AUDIO] * 3 + [Dtmf("5")] + [AUDIO] * 2
    assert stream.reason == "eof" and stream.frames_received == 5


async def test_hangup_frame_ends_the_stream(server: AudioSocketServer) -> None:
    call = uuid.uuid4()
    stream = server.expect(call)
    reader, writer = await peer(server)
    writer.write(frame(KIND_UUID, call.bytes) + frame(KIND_AUDIO, AUDIO) + frame(KIND_HANGUP))
    assert await drain(stream) == [AUDIO]
    assert stream.reason == "hangup"
    assert await closed_by_server(reader)
    writer.close()


@pytest.mark.parametrize("bad", [
    struct.pack("!BH", KIND_AUDIO, 60000) + b"x" * 100,  # length beyond the bound
    frame(KIND_AUDIO, b"odd"),  # not whole 16-bit samples
    frame(0x42, b"what"),  # unknown kind
    frame(KIND_UUID, uuid.UUID(int=0x5EC0_0D).bytes),  # a second UUID
    frame(KIND_DTMF, b"x"),  # not a DTMF digit
])
async def test_malformed_frame_closes_that_connection(server: AudioSocketServer,
                                                     bad: bytes) -> None:
    call = uuid.uuid4()
    stream = server.expect(call)
    reader, writer = await peer(server)
    writer.write(frame(KIND_UUID, call.bytes) + frame(KIND_AUDIO, AUDIO) + bad + AUDIO)
    assert await drain(stream) == [AUDIO]
    assert stream.reason is not None and stream.reason.startswith("protocol:")
    assert await closed_by_server(reader)
    writer.close()
    await test_hangup_frame_ends_the_stream(server)  # the server still serves calls


@pytest.mark.parametrize("opening", [
    b"",  # connects and says nothing
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # garbage
    frame(KIND_AUDIO, AUDIO),  # audio before the UUID
    frame(KIND_UUID, b"short"),  # truncated UUID
    frame(KIND_UUID, uuid.UUID(int=0xABCD).bytes),  # a call nobody expects
    struct.pack("!BH", KIND_UUID, 16) + b"12345",  # stalls inside the UUID frame
])
async def test_bad_opening_is_dropped(server: AudioSocketServer, opening: bytes) -> None:
    reader, writer = await peer(server)
    writer.write(opening)
    assert await closed_by_server(reader)
    writer.close()
    assert server.rejected == 1


async def test_peer_stalling_mid_call_times_out(server: AudioSocketServer) -> None:
    call = uuid.uuid4()
    stream = server.expect(call)
    reader, writer = await peer(server)
    partial = frame(KIND_AUDIO, AUDIO)[:50]
    writer.write(frame(KIND_UUID, call.bytes) + frame(KIND_AUDIO, AUDIO) + partial)
    assert await drain(stream) == [AUDIO]
    assert stream.reason is not None and "no frame within" in stream.reason
    assert await closed_by_server(reader)
    writer.close()


async def test_asterisk_never_connects() -> None:
    srv = AudioSocketServer(SpeechSettings(port=0))
    await srv.start()
    try:
        stream = srv.expect(uuid.uuid4(), connect_timeout_s=0.2)
        assert await drain(stream) == []
        assert stream.reason == "not connected"
        with pytest.raises(ValueError):
            srv.expect(stream.call_id.hex)  # expired: a new expectation is fine
            srv.expect(stream.call_id.hex)  # ...but not twice
    finally:
        await srv.close()


async def test_engine_plays_audio_back_and_hangs_up(server: AudioSocketServer) -> None:
    call = uuid.uuid4()
    stream = server.expect(call)
    reader, writer = await peer(server)
    writer.write(frame(KIND_UUID, call.bytes))
    assert await stream.wait_connected(5)
    await stream.send_audio(AUDIO * 2 + AUDIO[:100])
    await stream.hangup()
    got = await asyncio.wait_for(reader.read(), 5)
    assert got == frame(KIND_AUDIO, AUDIO) * 2 + frame(KIND_AUDIO, AUDIO[:100]) + frame(KIND_HANGUP)
    writer.close()
    assert stream.reason == "closed"


async def test_slow_consumer_pushes_back_and_engine_close_ends_call() -> None:
    srv = AudioSocketServer(SpeechSettings(port=0), max_frames=4)
    await srv.start()
    try:
        call = uuid.uuid4()
        stream = srv.expect(call)
        reader, writer = await peer(srv)
        writer.write(frame(KIND_UUID, call.bytes) + frame(KIND_AUDIO, AUDIO) * 50)
        await stream.wait_connected(5)
        # all 50 frames are in the socket: a reader without the bound would take them in one
        # go; this one stops once 4 are buffered and a 5th waits for room (TCP holds the rest)
        await until(lambda: stream.frames_received >= 5, "the buffer to fill")
        assert stream.frames_received == 5
        first = await anext(stream)
        assert first == AUDIO
        await until(lambda: stream.frames_received >= 6, "room for one more frame")
        assert stream.frames_received == 6
        stream.close()
        assert await closed_by_server(reader)
        writer.close()
    finally:
        await srv.close()


@pytest_asyncio.fixture
async def patient_server() -> AsyncIterator[AudioSocketServer]:
    """A server with the default time limits: 400 connections opened at once on a loaded
    machine may wait longer than the drop tests' 0.5 s for their first frame."""
    srv = AudioSocketServer(SpeechSettings(port=0))
    await srv.start()
    yield srv
    await srv.close()


async def test_many_calls_on_one_loop(patient_server: AudioSocketServer) -> None:
    server = patient_server
    calls = [uuid.uuid4() for _ in range(400)]
    streams = [server.expect(c) for c in calls]

    async def caller(call: uuid.UUID, index: int) -> None:
        _reader, writer = await peer(server)
        writer.write(frame(KIND_UUID, call.bytes))
        for _ in range(5):
            writer.write(frame(KIND_AUDIO, index.to_bytes(2, "big") * 160))
            await writer.drain()
            await asyncio.sleep(0)
        writer.close()

    results = await asyncio.gather(*(drain(s) for s in streams),
                                   *(caller(c, i) for i, c in enumerate(calls)))
    for index, items in enumerate(results[: len(calls)]):
        assert items == [index.to_bytes(2, "big") * 160] * 5


# -- the simulator's AudioSocket application (script steps, pure logic) -----------------------


def test_say_step(tmp_path: Path) -> None:
    wav = pcm_to_wav(AUDIO * 10, tmp_path / "a.wav")
    [item] = parse_step({"say": str(wav), "delay": 0.5})
    assert item.delay == 0.5 and item.digit is None and item.audio == AUDIO * 10
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    for bad in ({"say": str(tmp_path / "missing.wav")}, {"say": str(tmp_path / "bad.wav")},
                {"say": 5}, {"say": ""}):
        with pytest.raises(PartyError):
            parse_step(bad)


# -- end to end: simulator -> AudioSocket -> engine -> Vosk ----------------------------------


class AudioRoute:
    """A FastAGI route that listens to the caller over AudioSocket and records what it got."""

    def __init__(self, audio: AudioSocketServer, speech: SpeechEngine) -> None:
        self.audio = audio
        self.speech = speech
        self.grammar = load_grammars()["ko"]
        self.results: list[dict[str, Any]] = []
        self.bad_args: list[str] = []

    async def __call__(self, session: AgiSession) -> None:
        if self.bad_args:
            self.results.append({"bad": [await session.exec("AudioSocket", args)
                                         for args in self.bad_args]})
            self.bad_args = []
            await session.set_variable("HOTLINE_ROUTE", "done")
            return
        call = uuid.uuid4()
        stream = self.audio.expect(call)
        app = asyncio.create_task(session.exec("AudioSocket", str(call), self.audio.address))
        keys: list[str] = []
        heard: list[bytes] = []  # the audio frames taken before a key, in stream order

        async def pcm() -> AsyncIterator[bytes]:
            async for item in stream:
                if isinstance(item, Dtmf):
                    keys.append(item.digit)
                    return  # a keypress during listening answers the menu
                heard.append(item)
                yield item

        recognition: Recognition = await self.speech.listen(self.grammar, pcm())
        if recognition.outcome == "understood":
            await stream.hangup()  # a hangup frame: AudioSocket returns 0
        else:
            stream.close()  # the socket just closes: AudioSocket returns -1
        entry = {"recognition": recognition, "keys": keys, "exec": None,
                 "frames": stream.frames_received, "before_key": len(heard) if keys else None,
                 "reason": stream.reason}
        self.results.append(entry)
        entry["exec"] = await app
        await session.set_variable("HOTLINE_ROUTE", "done")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def e2e(tmp_path_factory: pytest.TempPathFactory
              ) -> AsyncIterator[tuple[SimulatorProcess, AudioRoute, Path]]:
    folder = tmp_path_factory.mktemp("audiosocket")
    speech = SpeechEngine(SpeechSettings(model_path=KO_MODEL_PATH, silence_s=3.0,
                                         max_listen_s=8.0, workers=2))
    await speech.start()
    audio = AudioSocketServer(SpeechSettings(port=0))
    await audio.start()
    route = AudioRoute(audio, speech)
    agi = FastAgiServer({"inbound": route}, AgiSettings(port=0))
    await agi.start()
    sim = await SimulatorProcess.start(agi_url=f"agi://127.0.0.1:{agi.port}", speed=4.0,
                                       log_path=folder / "sim.log")
    try:
        yield sim, route, folder
    finally:
        await sim.stop()
        await agi.close()
        await audio.close()
        speech.close()


async def call(sim: SimulatorProcess, script: list[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(
        sim.call({"number": "13800000009", "to": "12349", "context": "from-pstn",
                  "script": script, "hangup_after": 60}), 60)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("text", "intent"), [("도우미", "housekeeping"), ("밥", "meal"),
                                              ("안녕하세요", None)])
async def test_spoken_korean_reaches_the_recogniser(e2e: tuple[Any, AudioRoute, Path],
                                                    text: str, intent: str | None) -> None:
    sim, route, folder = e2e
    wav = pcm_to_wav(korean_call_audio(text, lead_s=0.0, tail_s=0.0), folder / f"{text}.wav")
    before = len(route.results)
    result = await call(sim, [{"say": str(wav), "delay": 0.6}])
    [got] = route.results[before:]
    assert got["recognition"].intent == intent, got["recognition"]
    assert (got["recognition"].outcome == "understood") == (intent is not None)
    assert got["keys"] == [] and got["frames"] > 50
    assert got["exec"] == (0 if intent else -1)
    assert result["variables"]["HOTLINE_ROUTE"] == "done"


@pytest.mark.asyncio(loop_scope="module")
async def test_keypress_while_listening_arrives_in_the_stream(
        e2e: tuple[Any, AudioRoute, Path]) -> None:
    sim, route, _folder = e2e
    before = len(route.results)
    await call(sim, [{"press": "2", "delay": 1.0}])
    [got] = route.results[before:]
    assert got["keys"] == ["2"]
    # 1 s of 20 ms frames came first, however late the simulator's key timer fired (the
    # frames read after the key, while recognition ends, are no part of it)
    assert got["before_key"] == 50
    assert got["recognition"].intent is None


@pytest.mark.asyncio(loop_scope="module")
async def test_caller_hangup_ends_the_stream_without_a_hangup_frame(
        e2e: tuple[Any, AudioRoute, Path]) -> None:
    sim, route, _folder = e2e
    before = len(route.results)
    await call(sim, [{"hangup": True, "delay": 1.0}])
    for _ in range(50):
        if len(route.results) > before:
            break
        await asyncio.sleep(0.1)
    [got] = route.results[before:]
    assert got["reason"] == "eof" and got["keys"] == []
    assert 40 <= got["frames"] <= 60
    assert got["recognition"].outcome == "silence"


@pytest.mark.asyncio(loop_scope="module")
async def test_bad_arguments_or_no_server_fail_the_application(
        e2e: tuple[Any, AudioRoute, Path]) -> None:
    sim, route, _folder = e2e
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    route.bad_args = ["", "not-a-uuid,127.0.0.1:1", f"{uuid.uuid4()}", f"{uuid.uuid4()},x:y",
                      f"{uuid.uuid4()},127.0.0.1:{port}"]
    before = len(route.results)
    result = await call(sim, [])
    [got] = route.results[before:]
    assert got["bad"] == [-1] * 5
    assert result["variables"]["HOTLINE_ROUTE"] == "done"
