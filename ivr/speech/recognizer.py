"""Offline recognition with Vosk: one model per process, one grammar-bound recogniser per call.

Call audio arrives as 8 kHz 16-bit mono frames; each recogniser resamples it to the model's
rate and reports one ``Recognition`` when the caller stops speaking (Vosk's endpoint), when
nothing was said for ``silence_s`` of audio, or when ``max_listen_s`` of audio has gone by.
Timeouts count audio time, not wall time, so simulated calls behave like real ones.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import vosk

from ivr.audio import SAMPLE_WIDTH, TELEPHONE_RATE, StreamResampler, wav_to_pcm
from ivr.config import SpeechSettings
from ivr.speech.grammar import Grammar

DEFAULT_MODEL_RATE = 16000
MAX_CHUNK_BYTES = TELEPHONE_RATE * SAMPLE_WIDTH  # one second of call audio per feed
FRAME_BYTES = TELEPHONE_RATE * SAMPLE_WIDTH * 20 // 1000  # 20 ms, as calls deliver it
Outcome = Literal["understood", "not_understood", "low_confidence", "silence"]

_models: dict[Path, vosk.Model] = {}
_models_lock = threading.Lock()


class SpeechError(RuntimeError):
    """The speech model is missing or unusable; the message says where it was looked for."""


def shared_model(path: str | Path) -> vosk.Model:
    """The process's one Vosk model for ``path``, loaded on first use (thread-safe)."""
    key = Path(path).resolve()
    with _models_lock:
        model = _models.get(key)
        if model is None:
            if not (key / "am").is_dir() or not (key / "conf").is_dir():
                raise SpeechError(f"no Vosk model at {key} (expected am/ and conf/ inside)")
            vosk.SetLogLevel(-1)
            try:
                model = vosk.Model(str(key))
            except Exception as exc:  # vosk raises a bare Exception on a broken model
                raise SpeechError(f"Vosk could not load the model at {key}: {exc}") from exc
            _models[key] = model
    return model


def model_rate(path: str | Path) -> int:
    """The sample rate a model was trained on (conf/mfcc.conf), 16 kHz when unstated."""
    try:
        conf = (Path(path) / "conf" / "mfcc.conf").read_text(encoding="utf-8")
    except OSError:
        return DEFAULT_MODEL_RATE
    found = re.search(r"^--sample-frequency=(\d+)", conf, re.MULTILINE)
    return int(found.group(1)) if found else DEFAULT_MODEL_RATE


@dataclass(frozen=True)
class Recognition:
    """What a caller said: the intent (None = not understood) and how sure and fast."""

    intent: str | None
    text: str
    confidence: float
    latency_s: float
    outcome: Outcome


class Recognizer:
    """A streaming recogniser for one call and one menu; feed it from one thread at a time."""

    def __init__(
        self,
        model: vosk.Model,
        grammar: Grammar,
        grammar_json: str,
        *,
        rate: int,
        threshold: float,
        max_listen_s: float,
        silence_s: float,
    ) -> None:
        self.grammar = grammar
        self.threshold = threshold
        self.max_listen_s = max_listen_s
        self.silence_s = silence_s
        self._kaldi = vosk.KaldiRecognizer(model, rate, grammar_json)
        self._kaldi.SetWords(True)
        self._resampler = StreamResampler(TELEPHONE_RATE, rate)
        self._audio_s = 0.0
        self._heard = False
        self.result: Recognition | None = None

    @property
    def heard_speech(self) -> bool:
        """True once the caller has started speaking (barge-in can stop the prompt)."""
        return self._heard

    @property
    def listened_s(self) -> float:
        """Seconds of call audio fed so far."""
        return self._audio_s

    def feed(self, pcm8k: bytes) -> Recognition | None:
        """Take a frame of call audio; return the recognition once the caller is done."""
        if self.result is not None:
            return self.result
        if len(pcm8k) > MAX_CHUNK_BYTES:
            raise ValueError(f"audio chunk of {len(pcm8k)} bytes exceeds {MAX_CHUNK_BYTES}")
        started = time.perf_counter()
        self._audio_s += len(pcm8k) / (TELEPHONE_RATE * SAMPLE_WIDTH)
        if self._kaldi.AcceptWaveform(self._resampler.convert(pcm8k)):
            payload = json.loads(self._kaldi.Result())
            if payload.get("text"):
                return self._conclude(payload, started)
        elif not self._heard:
            self._heard = bool(json.loads(self._kaldi.PartialResult()).get("partial"))
        if not self._heard and self._audio_s >= self.silence_s:
            return self._conclude({}, started)
        if self._audio_s >= self.max_listen_s:
            return self._conclude(json.loads(self._kaldi.FinalResult()), started)
        return None

    def finish(self) -> Recognition:
        """The audio has ended (hang-up, end of file): judge what was heard so far."""
        if self.result is not None:
            return self.result
        return self._conclude(json.loads(self._kaldi.FinalResult()), time.perf_counter())

    def _conclude(self, payload: dict[str, Any], started: float) -> Recognition:
        words = payload.get("result") or []
        text = str(payload.get("text", ""))
        confidence = min((float(w.get("conf", 0.0)) for w in words), default=0.0)
        spoke_until = float(words[-1].get("end", self._audio_s)) if words else self._audio_s
        latency = max(0.0, self._audio_s - spoke_until) + time.perf_counter() - started
        intent = self.grammar.intent_of(text) if text else None
        outcome: Outcome
        if not text:
            outcome = "silence"
        elif intent is None:
            outcome = "not_understood"
        elif confidence < self.threshold:
            outcome, intent = "low_confidence", None
        else:
            outcome = "understood"
        self.result = Recognition(intent, text, confidence, latency, outcome)
        return self.result


def recognise(recognizer: Recognizer, chunks: Iterable[bytes]) -> Recognition:
    """Feed recorded call audio (at most a second per chunk) until the caller is judged."""
    for chunk in chunks:
        result = recognizer.feed(chunk)
        if result is not None:
            return result
    return recognizer.finish()


def pcm_frames(pcm: bytes) -> Iterable[bytes]:
    """Call audio cut into 20 ms frames."""
    return (pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES))


class SpeechEngine:
    """The process's recognition service: the shared model and a small thread pool.

    Vosk decodes in native code without the GIL, so a few threads let many calls recognise
    at once while the event loop stays free.
    """

    def __init__(self, settings: SpeechSettings) -> None:
        self.settings = settings
        self.rate = settings.sample_rate or model_rate(settings.model_path)
        self._model: vosk.Model | None = None
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="speech")
        self._compiled: dict[str, str] = {}

    @property
    def model(self) -> vosk.Model:
        """The loaded model (load it with ``start`` or ``load``)."""
        if self._model is None:
            self._model = shared_model(self.settings.model_path)
        return self._model

    def load(self) -> vosk.Model:
        """Load (or reuse) the shared model, blocking."""
        return self.model

    async def start(self) -> None:
        """Load the model off the event loop."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self.load)

    def _grammar_json(self, grammar: Grammar) -> str:
        key = grammar.vosk_json()
        compiled = self._compiled.get(key)
        if compiled is None:
            model = self.model
            compiled = grammar.vosk_json(lambda w: model.vosk_model_find_word(w) >= 0)
            self._compiled[key] = compiled
        return compiled

    def usable(self, grammar: Grammar) -> bool:
        """True when at least one of the grammar's phrases is in the model's vocabulary."""
        entries = set(json.loads(self._grammar_json(grammar)))
        return any(phrase in entries for phrase in grammar.phrases())

    def recognizer(self, grammar: Grammar, lead_s: float = 0.0) -> Recognizer:
        """A fresh recogniser for one call, restricted to one menu's grammar.

        ``lead_s`` is the length of the prompt the caller hears while the recogniser already
        listens (barge-in): the silence and listening limits count from its end.
        """
        return Recognizer(
            self.model,
            grammar,
            self._grammar_json(grammar),
            rate=self.rate,
            threshold=self.settings.confidence_threshold,
            max_listen_s=self.settings.max_listen_s + lead_s,
            silence_s=self.settings.silence_s + lead_s,
        )

    def recognise_file(self, grammar: Grammar, path: str | Path) -> Recognition:
        """Recognise a recorded answer (any WAV layout), blocking."""
        return recognise(self.recognizer(grammar), pcm_frames(wav_to_pcm(path)))

    async def feed(self, recognizer: Recognizer, pcm8k: bytes) -> Recognition | None:
        """Feed one frame on the thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, recognizer.feed, pcm8k)

    async def finish(self, recognizer: Recognizer) -> Recognition:
        """Judge what was heard so far, on the thread pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, recognizer.finish)

    async def listen_file(self, grammar: Grammar, path: str | Path) -> Recognition:
        """Recognise a recorded answer on the thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.recognise_file, grammar, path)

    async def listen(self, grammar: Grammar, frames: AsyncIterable[bytes]) -> Recognition:
        """Recognise one answer from a stream of call-audio frames."""
        recognizer = self.recognizer(grammar)
        async for frame in frames:
            result = await self.feed(recognizer, frame)
            if result is not None:
                return result
        return await self.finish(recognizer)

    def close(self) -> None:
        """Stop the thread pool (the shared model stays loaded for the process)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
