"""Files that RECORD FILE leaves behind: silence of the recorded length, when a record
directory is configured (otherwise nothing is written)."""

from __future__ import annotations

import logging
import wave
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.pbx import Pbx

log = logging.getLogger(__name__)

MAX_SAMPLES = 8000 * 3600


def target_path(root: Path, name: str, fmt: str) -> Path | None:
    """``name`` (relative or absolute, as the engine gave it) mapped inside ``root``."""
    rel = Path(name.lstrip("/"))
    if not name.strip() or ".." in rel.parts:
        return None
    return root / rel.with_name(f"{rel.name}.{fmt}")


def write_silence(pbx: Pbx, name: str, fmt: str, samples: int) -> None:
    root = pbx.settings.record_dir
    if root is None:
        return
    path = target_path(root, name, fmt)
    if path is None:
        log.warning("refusing to record to %r", name)
        return
    frames = b"\x00\x00" * max(0, min(samples, MAX_SAMPLES))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt.startswith("wav"):
            with wave.open(str(path), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(16000 if fmt == "wav16" else 8000)
                out.writeframes(frames)
        else:
            path.write_bytes(frames)
    except OSError as exc:
        log.warning("cannot write recording %s: %s", path, exc)
