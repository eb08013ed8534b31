"""Files that RECORD FILE leaves behind, when a record directory is configured (otherwise
nothing is written): what the caller said (``say`` steps) at the moments they said it, and
the quiet line's hiss around it, for the recorded length."""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred

from sim.voice import audioop, line_noise

if TYPE_CHECKING:
    from sim.inputs import InputWindow, WaitResult
    from sim.pbx import Pbx

log = logging.getLogger(__name__)

RATE = 8000
MAX_SAMPLES = RATE * 3600
Speech = tuple[float, bytes]  # (seconds from the start of the recording, 8 kHz 16-bit PCM)


def target_path(root: Path, name: str, fmt: str) -> Path | None:
    """``name`` (relative or absolute, as the engine gave it) mapped inside ``root``."""
    rel = Path(name.lstrip("/"))
    if not name.strip() or ".." in rel.parts:
        return None
    return root / rel.with_name(f"{rel.name}.{fmt}")


def _speech_end(spoken: Sequence[Speech]) -> float:
    return max((at + len(audio) / (2 * RATE) for at, audio in spoken), default=0.0)


async def record_in(
    win: InputWindow, limit_s: float | None, silence_s: float | None,
    stop: Callable[[str], bool] | None,
) -> tuple[WaitResult, list[Speech]]:
    """Listen inside ``win`` as Asterisk's RECORD FILE does: until a stopping key, a hangup,
    ``limit_s``, or ``silence_s`` of quiet after the caller last spoke (or from the start).
    The result's ``elapsed`` counts from the start of the recording."""
    spoken: list[Speech] = []
    arrived: list[Deferred] = [Deferred()]

    def speak(audio: bytes) -> None:
        spoken.append((win.position, audio))
        fired, arrived[0] = arrived[0], Deferred()
        fired.callback(None)

    win.speaker = speak
    start = win.position
    while True:
        ends = [] if limit_s is None else [start + limit_s]
        if silence_s is not None:
            ends.append(max(start, _speech_end(spoken)) + silence_s)
        remaining = None if not ends else max(0.0, min(ends) - win.position)
        result = await win.wait(remaining, stop=stop, until=arrived[0])
        if result.kind != "until":
            result.elapsed = win.position - start
            return result, spoken


def write_recording(
    pbx: Pbx, name: str, fmt: str, samples: int, spoken: Sequence[Speech] = ()
) -> None:
    root = pbx.settings.record_dir
    if root is None:
        return
    path = target_path(root, name, fmt)
    if path is None:
        log.warning("refusing to record to %r", name)
        return
    size = max(0, min(samples, MAX_SAMPLES)) * 2
    frames = bytearray(line_noise(size))
    for at, audio in spoken:
        offset = int(at * RATE) * 2
        piece = audio[: max(0, size - offset)]
        frames[offset : offset + len(piece)] = piece
    data, rate = bytes(frames), RATE
    if fmt == "wav16":
        data, rate = audioop.ratecv(data, 2, 1, RATE, 2 * RATE, None)[0], 2 * RATE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt.startswith("wav"):
            with wave.open(str(path), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(rate)
                out.writeframes(data)
        else:
            path.write_bytes(data)
    except OSError as exc:
        log.warning("cannot write recording %s: %s", path, exc)
