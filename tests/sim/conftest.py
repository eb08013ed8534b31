"""Fixtures for the simulator tests: generated prompt files and the dialplan fixtures."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DIALPLANS = HERE / "dialplans"

# name -> seconds of (silent) 8 kHz 16-bit mono audio
PROMPTS = {
    "en/welcome": 3.0,
    "en/menu": 3.0,
    "en/beep": 0.25,
    "en/long": 20.0,
    **{f"en/digits/{d}": 0.5 for d in range(10)},
    "zh/hello": 1.5,
}


def write_wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * round(seconds * 8000))


@pytest.fixture(scope="session")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sounds")
    for name, seconds in PROMPTS.items():
        write_wav(root / f"{name}.wav", seconds)
    return root
