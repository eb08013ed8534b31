"""Prompt files: Asterisk prompt names resolved to WAV files and their durations."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

log = logging.getLogger(__name__)


class SoundLibrary:
    """Maps prompt names to ``<sounds>/...wav`` the way Asterisk looks files up.

    ``<prefix>/<lang>/<name>`` -> ``<sounds>/<lang>/<name>.wav``; other relative names are
    tried as ``<sounds>/<language>/<name>.wav`` then ``<sounds>/<name>.wav``; absolute paths are
    used as given (with ``.wav`` appended). Durations come from the WAV header and are cached.
    """

    def __init__(self, root: Path | None, prefix: str = "hotline") -> None:
        self.root = root.resolve() if root is not None else None
        self.prefix = prefix.strip("/")
        self._cache: dict[Path, float | None] = {}
        self._names: dict[tuple[str, str], float | None] = {}

    def candidates(self, name: str, language: str) -> list[Path]:
        name = name.strip()
        if not name or "\x00" in name:
            return []
        if name.startswith("/"):
            return [Path(name + ".wav")]
        if self.root is None or ".." in Path(name).parts:
            return []
        parts = name.split("/")
        leaf = parts[-1] + ".wav"
        if self.prefix and parts[0] == self.prefix and len(parts) > 1:
            return [self.root.joinpath(*parts[1:-1], leaf)]
        return [self.root.joinpath(language, *parts[:-1], leaf),
                self.root.joinpath(*parts[:-1], leaf)]

    def duration(self, name: str, language: str) -> float | None:
        """Seconds of audio in the prompt, or None when no playable file exists."""
        key = (name, language)
        if key not in self._names:
            if len(self._names) > 100_000:
                self._names.clear()
            self._names[key] = self._lookup(name, language)
        return self._names[key]

    def _lookup(self, name: str, language: str) -> float | None:
        for path in self.candidates(name, language):
            if path in self._cache:
                if self._cache[path] is not None:
                    return self._cache[path]
                continue
            seconds = _wav_seconds(path)
            self._cache[path] = seconds
            if seconds is not None:
                return seconds
        return None


def _wav_seconds(path: Path) -> float | None:
    try:
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate > 0 else None
    except FileNotFoundError:
        return None
    except (OSError, wave.Error, EOFError) as exc:
        log.warning("unreadable prompt file %s: %s", path, exc)
        return None
