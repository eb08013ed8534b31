"""The engine's speech service: the shared model, the grammars, prompt audio, AudioSocket.

Started once per engine process when ``[speech] enabled`` is set. A model that is missing or
cannot be loaded, or a grammar file that is broken, leaves the engine on the keypad menu with
an error in the log: speech is never a reason for a call to fail.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ivr.audio import wav_to_pcm
from ivr.audiosocket import AudioSocketServer
from ivr.config import SpeechSettings
from ivr.prompts import PROMPTS_DIR, PromptCatalogue
from ivr.speech.grammar import Grammar, GrammarError, load_grammars
from ivr.speech.recognizer import SpeechEngine, SpeechError

log = logging.getLogger(__name__)


class SpeechService:
    """What spoken menus share across calls: one model, grammars by language, prompt audio."""

    def __init__(
        self, settings: SpeechSettings, prompts: PromptCatalogue, default_language: str
    ) -> None:
        self.settings = settings
        self.prompts = prompts
        self.default_language = default_language
        self.engine = SpeechEngine(settings)
        self.audio = AudioSocketServer(settings)
        self.grammars: dict[str, Grammar] = {}
        self._menus: dict[tuple[str, tuple[str, ...]], Grammar | None] = {}
        self._pcm: dict[str, bytes] = {}
        self._unknown_languages: set[str] = set()
        self.answered: Counter[str] = Counter()  # spoken-menu answers by kind, this process

    @classmethod
    async def start(
        cls, settings: SpeechSettings, prompts: PromptCatalogue, default_language: str
    ) -> SpeechService | None:
        """The running service, or None (logged) when speech is off or cannot work."""
        if not settings.enabled:
            return None
        service = cls(settings, prompts, default_language)
        try:
            service.grammars = load_grammars()
            await service.engine.start()
            await service.audio.start()
        except (SpeechError, GrammarError, OSError) as exc:
            log.error("spoken menu unavailable, keypad menu only: %s", exc)
            await service.close()
            return None
        log.info("spoken menu on: model %s, %s", settings.model_path, settings.transport)
        return service

    def grammar(self, language: str, intents: Sequence[str]) -> Grammar | None:
        """One menu's grammar in the caller's language (the default language's when there is
        none); None when the model knows none of its phrases."""
        if language not in self.grammars:
            if language not in self._unknown_languages:
                self._unknown_languages.add(language)
                log.warning("no spoken-menu grammar for language %r: using %r",
                            language, self.default_language)
            language = self.default_language
        key = (language, tuple(intents))
        if key not in self._menus:
            table = self.grammars.get(language)
            menu = table.only(intents) if table is not None else None
            if menu is not None and not self.engine.usable(menu):
                log.warning("model %s knows no %s phrase of %s: keypad menu for these callers",
                            self.settings.model_path, menu.language, list(intents))
                menu = None
            self._menus[key] = menu
        return self._menus[key]

    def prompt_file(self, name: str, language: str) -> Path:
        """The local recording of a prompt, with the catalogue's language fallback."""
        relative = self.prompts.path(name, language).removeprefix(f"{self.prompts.prefix}/")
        return PROMPTS_DIR / f"{relative}.wav"

    def prompt_pcm(self, name: str, language: str) -> bytes:
        """A prompt as 8 kHz 16-bit mono PCM, read once per process."""
        path = self.prompt_file(name, language)
        key = str(path)
        if key not in self._pcm:
            self._pcm[key] = wav_to_pcm(path)
        return self._pcm[key]

    async def close(self) -> None:
        await self.audio.close()
        self.engine.close()
