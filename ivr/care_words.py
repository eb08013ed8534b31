"""A reminder's or a campaign's own words, spoken on its caring call.

The words are synthesised once per text and language, with the prompts' voice and pace, into
``[care] words_dir`` (a folder Asterisk reads), and played by their absolute path. A file is
named by a hash of its language and text, written under a temporary name and renamed, so a
half-written file is never played and two engines rendering the same words at once end with
one. When the words cannot be synthesised in time (no espeak-ng, a full disk), the call
plays the kind's recorded prompt instead: the elder still hears a reminder.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from ivr.prompts import PromptCatalogue, synthesise

log = logging.getLogger(__name__)

RENDER_TIMEOUT_S = 10.0
WARN_EVERY_S = 60.0


class CareWords:
    def __init__(self, folder: Path, catalogue: PromptCatalogue,
                 timeout_s: float = RENDER_TIMEOUT_S) -> None:
        self.folder = folder.resolve()
        self.catalogue = catalogue
        self.timeout_s = timeout_s
        self._rendering: dict[Path, asyncio.Future[None]] = {}
        self._warned_at = -WARN_EVERY_S

    def file_of(self, text: str, language: str) -> Path:
        """Where the words are kept (``<folder>/<language>/words_<hash>.wav``)."""
        code = self.catalogue.recorded_language(language)
        digest = hashlib.sha256(f"{code}\n{text}".encode()).hexdigest()[:24]
        return self.folder / code / f"words_{digest}.wav"

    async def path(self, text: str, language: str) -> str | None:
        """The words' Asterisk path (absolute, no extension), rendered if need be; None
        when they cannot be."""
        target = self.file_of(text, language)
        if not target.exists():
            try:
                await asyncio.wait_for(asyncio.shield(self._render_once(target, text)),
                                       self.timeout_s)
            except Exception as exc:  # any failure at all: the recorded prompt plays
                self._warn(exc)
                return None
        return str(target.with_suffix(""))

    def _warn(self, exc: Exception) -> None:
        """At most one warning a minute: a fault that lasts is seen, not repeated per call."""
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("a caring call's own words were not synthesised (%s: %s); the "
                        "recorded prompt is played instead", type(exc).__name__, exc)

    def _render_once(self, target: Path, text: str) -> asyncio.Future[None]:
        """One rendering per file at a time; callers of the same words share it."""
        running = self._rendering.get(target)
        if running is None:
            running = asyncio.ensure_future(asyncio.to_thread(self._render, target, text))
            self._rendering[target] = running
            running.add_done_callback(lambda _f: self._rendering.pop(target, None))
        return running

    def _render(self, target: Path, text: str) -> None:
        lang = self.catalogue.languages[target.parent.name]
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=".wav", dir=target.parent)
        os.close(handle)
        try:
            synthesise(text, lang.voice, lang.words_per_minute, Path(temporary))
            os.chmod(temporary, 0o644)  # Asterisk's user reads it
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
