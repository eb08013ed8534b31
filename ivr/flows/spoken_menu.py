"""One call's spoken menus: the prompt, the caller's answer by voice or key, fail-safe.

Over AudioSocket (the default) the FastAGI session runs ``EXEC AudioSocket <uuid>,<host:port>``
and waits for it, as Asterisk's application blocks the channel until the socket ends. The
prompt is therefore played by the engine as 20 ms audio frames over that socket, one for each
frame of caller audio listened to (the caller's RTP is the clock) plus a small lead, so it is
never sent faster than it is heard and stops where the caller was heard to speak. Every
caller frame is recognised while the prompt plays: when the caller starts speaking the
prompt stops (barge-in); a key (DTMF frame) is the keypad answer. The engine then sends a
hangup frame, AudioSocket returns 0 and the dialogue carries on over FastAGI.

Over RECORD FILE (for sites without AudioSocket) the prompt is played with STREAM FILE (keys
interrupt it), the answer recorded into ``[speech] record_dir`` until ``silence_s`` of quiet,
and the file recognised; there is no barge-in by voice on this path.

Any failure of the audio path (AudioSocket does not connect or does not exist, the model
knows none of the language's phrases, a recording cannot be read) answers ``unavailable``:
the flow falls back to the keypad menu for the rest of the call.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.audiosocket import FRAME_BYTES, AudioSocketError, AudioStream, Dtmf
from ivr.speech.grammar import Grammar
from ivr.speech.recognizer import Recognition
from ivr.speech.service import SpeechService

log = logging.getLogger(__name__)

LEAD_FRAMES = 5  # prompt audio sent ahead of the caller's frames: 100 ms against jitter
BYTES_PER_SECOND = 16000
ANY_KEY = "0123456789*#"
Kind = Literal["understood", "key", "not_understood", "silence", "unavailable"]


@dataclass(frozen=True)
class Answer:
    """The caller's answer to one spoken menu."""

    kind: Kind
    intent: str | None = None
    digit: str | None = None
    recognition: Recognition | None = None
    barged_in: bool = False  # the prompt was cut short by the caller

    def keys(self, intent_keys: Mapping[str, str]) -> str:
        """The answer as the keypad digits that mean the same ("" for silence)."""
        if self.digit is not None:
            return self.digit
        return intent_keys.get(self.intent or "", "")


def _judged(recognition: Recognition, barged_in: bool) -> Answer:
    kind: Kind
    if recognition.outcome == "understood":
        kind = "understood"
    elif recognition.outcome == "silence":
        kind = "silence"
    else:
        kind = "not_understood"
    return Answer(kind, recognition.intent, None, recognition, barged_in)


class PromptPlayer:
    """Plays a prompt over AudioSocket at the pace the caller's frames arrive."""

    def __init__(self, stream: AudioStream, pcm: bytes) -> None:
        self.stream = stream
        self.pcm = pcm
        self.sent = 0
        self.cut = False

    @property
    def playing(self) -> bool:
        return not self.cut and self.sent < len(self.pcm)

    async def keep_ahead(self, frames_heard: int) -> None:
        """Send what is due: as much as the caller audio listened to so far, plus the lead."""
        due = (frames_heard + LEAD_FRAMES) * FRAME_BYTES
        if not self.playing or self.sent >= due:
            return
        chunk = self.pcm[self.sent : due]
        self.sent += len(chunk)
        try:
            await self.stream.send_audio(chunk)
        except AudioSocketError as exc:
            log.warning("prompt not sent over AudioSocket: %s", exc)
            self.cut = True

    def stop(self) -> bool:
        """Stop the prompt; True if it was still playing."""
        was_playing = self.playing
        self.cut = True
        return was_playing


def _consume(task: asyncio.Task[int]) -> None:
    if not task.cancelled():
        task.exception()


class SpokenMenu:
    """The spoken menus of one call."""

    def __init__(self, service: SpeechService, agi: AgiSession) -> None:
        self.service = service
        self.agi = agi
        self.available = True

    async def ask(self, prompt: str, language: str, intent_keys: Mapping[str, str]) -> Answer:
        """Play ``prompt`` and take the answer: an intent of ``intent_keys`` or a key."""
        grammar = self.service.grammar(language, list(intent_keys)) if self.available else None
        if grammar is None:  # the service has logged why, once
            self.available = False
            return Answer("unavailable")
        try:
            if self.service.settings.transport == "record":
                answer = await self._by_recording(prompt, language, grammar)
            else:
                answer = await self._over_audiosocket(prompt, language, grammar)
        except (OSError, ValueError) as exc:  # prompt or recording unreadable
            return self._unavailable(f"{type(exc).__name__}: {exc}")
        if answer.kind == "unavailable":
            self.available = False
        self.service.answered[answer.kind] += 1
        rec = answer.recognition
        log.info("call %s spoken menu %s: %s%s", self.agi.env.uniqueid, prompt, answer.kind,
                 f" {rec.intent} conf {rec.confidence:.2f} in {rec.latency_s:.2f} s"
                 if rec is not None and rec.intent else "")
        return answer

    def _unavailable(self, why: str) -> Answer:
        if self.available:
            log.warning("call %s: keypad menu, speech unavailable (%s)", self.agi.env.uniqueid,
                        why)
        self.available = False
        return Answer("unavailable")

    # -- AudioSocket ------------------------------------------------------------------------

    async def _over_audiosocket(self, prompt: str, language: str, grammar: Grammar) -> Answer:
        pcm = self.service.prompt_pcm(prompt, language)
        server = self.service.audio
        call_id = uuid.uuid4()
        stream = server.expect(call_id, self.service.settings.connect_timeout_s + 5.0)
        app = asyncio.create_task(self.agi.exec("AudioSocket", str(call_id), server.address))
        app.add_done_callback(_consume)  # awaited below unless this call fails first
        try:
            if await self._connected(stream, app):
                answer = await self._listen(stream, pcm, grammar)
            else:
                answer = Answer("unavailable")
        finally:
            await stream.hangup()  # AudioSocket ends, its EXEC replies
        result = await app  # raises AgiHangup if the link to Asterisk went down
        if self.agi.hungup:
            raise AgiHangup("caller hung up during the spoken menu")
        if answer.kind == "unavailable":
            log.warning("AudioSocket did not connect (EXEC returned %s, stream %s)", result,
                        stream.reason)
        return answer

    async def _connected(self, stream: AudioStream, app: asyncio.Task[int]) -> bool:
        """True once Asterisk's AudioSocket has connected; False if it failed or timed out."""
        waiter = asyncio.create_task(
            stream.wait_connected(self.service.settings.connect_timeout_s))
        await asyncio.wait({waiter, app}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        return stream.connected and not app.done()

    async def _listen(self, stream: AudioStream, pcm: bytes, grammar: Grammar) -> Answer:
        engine = self.service.engine
        recognizer = engine.recognizer(grammar, lead_s=len(pcm) / BYTES_PER_SECOND)
        player = PromptPlayer(stream, pcm)
        barged_in = False
        frames = 0
        await player.keep_ahead(frames)
        async for item in stream:
            if isinstance(item, Dtmf):
                return Answer("key", digit=item.digit, barged_in=player.stop())
            result = await engine.feed(recognizer, item)
            frames += 1
            if recognizer.heard_speech or result is not None:
                barged_in = player.stop() or barged_in
            if result is not None:
                return _judged(result, barged_in)
            await player.keep_ahead(frames)
        return _judged(await engine.finish(recognizer), barged_in)

    # -- RECORD FILE ------------------------------------------------------------------------

    async def _by_recording(self, prompt: str, language: str, grammar: Grammar) -> Answer:
        settings = self.service.settings
        played = await self.agi.stream_file(self.service.prompts.path(prompt, language),
                                            ANY_KEY)
        if played.digit is not None:
            return Answer("key", digit=played.digit, barged_in=True)
        base = Path(settings.record_dir).resolve() / f"menu-{uuid.uuid4().hex}"
        reply = await self.agi.command(
            "RECORD FILE", str(base), "wav", ANY_KEY,
            int((settings.max_listen_s + settings.silence_s) * 1000),
            f"s={max(1, round(settings.silence_s))}",
        )
        if reply.result == "-1":
            if reply.data == "hangup" or self.agi.hungup:
                self.agi.hungup = True
                raise AgiHangup("caller hung up while recording")
            return Answer("unavailable")
        if reply.data == "dtmf" and (reply.value or 0) > 0:
            path = base.with_suffix(".wav")
            path.unlink(missing_ok=True)
            return Answer("key", digit=chr(reply.value or 0))
        path = base.with_suffix(".wav")
        try:
            result = await self.service.engine.listen_file(grammar, path)
        finally:
            path.unlink(missing_ok=True)
        return _judged(result, False)
