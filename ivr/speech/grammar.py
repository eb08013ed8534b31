"""Spoken-menu grammars: per-language phrase tables, the Vosk grammar JSON, text -> intent."""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ivr.assets import prompts_dir

log = logging.getLogger(__name__)

GRAMMAR_PATH = prompts_dir() / "grammar.toml"
INTENTS = (
    "meal",
    "housekeeping",
    "health",
    "operator",
    "emergency",
    "confirm_yes",
    "confirm_no",
)
# Vosk's garbage word: "[unk]" in most models, "<UNK>" in some Kaldi recipes.
UNKNOWN_TOKENS = ("[unk]", "<unk>", "<UNK>")


class GrammarError(ValueError):
    """The phrase table is malformed; the message names the language and entry."""


def _squash(phrase: str) -> str:
    """Matching key: recognisers put spaces between words, tables may not."""
    return "".join(phrase.split())


@dataclass(frozen=True)
class Grammar:
    """The phrases one language accepts, by intent.

    ``fillers`` are polite words accepted around a phrase; ``garbage`` words are short sounds
    that absorb noise and out-of-menu speech, so that hearing one means "not understood".
    """

    language: str
    intents: Mapping[str, tuple[str, ...]]
    fillers: tuple[str, ...] = ()
    garbage: tuple[str, ...] = ()
    _lookup: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for intent, phrases in self.intents.items():
            if intent not in INTENTS:
                raise GrammarError(f"{self.language}: unknown intent {intent!r}")
            if not phrases:
                raise GrammarError(f"{self.language}.{intent}: no phrases")
            for phrase in phrases:
                key = _squash(phrase)
                if not key:
                    raise GrammarError(f"{self.language}.{intent}: empty phrase")
                if seen.setdefault(key, intent) != intent:
                    raise GrammarError(
                        f"{self.language}: phrase {phrase!r} is in both {seen[key]} and {intent}"
                    )
        clash = (set(self.fillers) & set(self.garbage)) | (set(seen) & set(self.garbage))
        if clash:
            raise GrammarError(f"{self.language}: garbage words also used as phrases: {clash}")
        object.__setattr__(self, "intents", MappingProxyType(dict(self.intents)))
        lookup = {_squash(p): i for i, phrases in self.intents.items() for p in phrases}
        object.__setattr__(self, "_lookup", MappingProxyType(lookup))

    def only(self, intents: Iterable[str]) -> Grammar:
        """The grammar of one menu: just the listed intents."""
        wanted = list(intents)
        missing = [i for i in wanted if i not in self.intents]
        if missing:
            raise GrammarError(f"{self.language}: no phrases for {', '.join(missing)}")
        chosen = {i: self.intents[i] for i in wanted}
        return Grammar(self.language, chosen, self.fillers, self.garbage)

    def phrases(self) -> list[str]:
        """All intent phrases, in table order."""
        return [p for phrases in self.intents.values() for p in phrases]

    def vosk_json(self, known: Callable[[str], bool] | None = None) -> str:
        """The JSON list Vosk takes as a grammar: phrases, fillers, garbage words and [unk].

        ``known`` tells whether a word is in the model's vocabulary; phrases with an unknown
        word are left out (and logged), and the garbage word is the spelling the model has.
        """
        entries = [*self.phrases(), *self.fillers, *self.garbage]
        if known is not None:
            dropped = [e for e in entries if not all(known(w) for w in e.split())]
            if dropped:
                log.warning("%s: not in the model's vocabulary: %s", self.language, dropped)
            entries = [e for e in entries if e not in dropped]
        garbage = next((t for t in UNKNOWN_TOKENS if known is None or known(t)), None)
        if garbage is not None:
            entries.append(garbage)
        return json.dumps(entries, ensure_ascii=False)

    def intent_of(self, text: str) -> str | None:
        """The intent a recognised text names, or None when it is not exactly one phrase."""
        words = text.split()
        if any(w in UNKNOWN_TOKENS or w in self.garbage for w in words):
            return None
        meaning = "".join(w for w in words if w not in self.fillers)
        return self._lookup.get(meaning) if meaning else None


def _parse_language(language: str, table: object) -> Grammar:
    if not isinstance(table, dict) or not isinstance(table.get("intents"), dict):
        raise GrammarError(f"{language}: expected an [{language}.intents] table")
    intents: dict[str, tuple[str, ...]] = {}
    for intent, phrases in table["intents"].items():
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise GrammarError(f"{language}.{intent}: expected a list of strings")
        intents[intent] = tuple(phrases)
    return Grammar(
        language,
        intents,
        _word_list(language, table, "fillers"),
        _word_list(language, table, "garbage"),
    )


def _word_list(language: str, table: dict[str, object], key: str) -> tuple[str, ...]:
    words = table.get(key, [])
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise GrammarError(f"{language}.{key}: expected a list of strings")
    return tuple(words)


def load_grammars(path: str | Path = GRAMMAR_PATH) -> dict[str, Grammar]:
    """Read every language's grammar from a TOML phrase table."""
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise GrammarError(f"grammar file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise GrammarError(f"grammar file {path} is not valid TOML: {exc}") from exc
    return {language: _parse_language(language, table) for language, table in data.items()}
