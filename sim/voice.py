"""Callers' speech: WAV files turned into 8 kHz 16-bit mono call audio (stdlib only), and the
faint hiss of a quiet line between words (a telephone line never carries digital zeros)."""

from __future__ import annotations

import random
import struct
import warnings
import wave
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

CALL_RATE = 8000
MAX_SECONDS = 60.0
NOISE_LEVEL = 2  # peak sample value of the line hiss: about -84 dBFS
_rng = random.Random(12349)
_NOISE = struct.pack(f"<{CALL_RATE}h",
                     *(_rng.randint(-NOISE_LEVEL, NOISE_LEVEL) for _ in range(CALL_RATE)))


def line_noise(size: int, start: int = 0) -> bytes:
    """``size`` bytes (even) of the quiet line's hiss, from byte ``start`` of its cycle."""
    begin = start % len(_NOISE) & ~1
    repeats = (begin + size) // len(_NOISE) + 1
    return (_NOISE * repeats)[begin : begin + size]


class VoiceError(ValueError):
    """The file is not a usable WAV recording."""


def load_wav(path: str | Path) -> bytes:
    """The recording as 8 kHz signed 16-bit mono PCM, at most MAX_SECONDS long."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            count = wav.getnframes()
            if not 0 < rate <= 192_000 or count > rate * MAX_SECONDS:
                raise VoiceError(f"{path}: more than {MAX_SECONDS:g} s or a bad sample rate")
            data = wav.readframes(count)
    except (OSError, EOFError, wave.Error) as exc:
        raise VoiceError(f"{path}: not a readable WAV file ({exc})") from None
    if width not in (1, 2, 3, 4) or channels not in (1, 2):
        raise VoiceError(f"{path}: unsupported WAV layout ({channels} ch, {width} bytes)")
    if width == 1:
        data = audioop.bias(data, 1, -128)  # WAV stores 8-bit samples unsigned
    if width != 2:
        data = audioop.lin2lin(data, width, 2)
    if channels == 2:
        data = audioop.tomono(data, 2, 0.5, 0.5)
    if rate != CALL_RATE:
        data, _state = audioop.ratecv(data, 2, 1, rate, CALL_RATE, None)
    return data
