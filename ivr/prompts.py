"""The prompt catalogue: names, texts per language, Asterisk paths, and the TTS build step.

Besides one table per language, the catalogue holds each prompt's duration budget
(``[budget_s]``, seconds, for every language: a longer recording fails ``hotline prompts
check`` and the tests, not an elder) and the openings that must be heard early
(``[opening.<prompt>]``: the words that name the ways to a human and to emergency help,
spoken within ``within_s`` seconds), and the surnames recorded one by one
(``[surnames]``): a caring call greets an elder as 张奶奶 or 李爷爷 by putting the surname's
recording before the honorific's, the way numbers are said from digit recordings.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from ivr.assets import prompts_dir
from ivr.audio import TELEPHONE_RATE, AudioSegment, to_telephone

PROMPTS_DIR = prompts_dir()
CATALOGUE_PATH = PROMPTS_DIR / "catalogue.toml"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
BUDGETS_TABLE = "budget_s"
OPENINGS_TABLE = "opening"
SURNAMES_TABLE = "surnames"
SURNAME_PREFIX = "surname_"
HONORIFICS = {"F": "honorific_female", "M": "honorific_male"}
_HAN = re.compile(r"^[\u3400-\u9fff]+$")


class CatalogueError(Exception):
    """The prompt catalogue is malformed."""


@dataclass(frozen=True, slots=True)
class PromptLanguage:
    code: str
    voice: str
    words_per_minute: int
    texts: dict[str, str]


@dataclass(frozen=True, slots=True)
class Opening:
    """The first words of a prompt, per language, that must be heard within ``within_s``;
    they name the keys ``keys``."""

    prompt: str
    within_s: float
    keys: str
    texts: dict[str, str]


@dataclass(frozen=True, slots=True)
class PromptCatalogue:
    """All prompts by language, resolved to Asterisk prompt paths with a fallback language."""

    languages: dict[str, PromptLanguage]
    default_language: str
    prefix: str = "hotline"
    budgets: dict[str, float] = field(default_factory=dict)
    openings: dict[str, Opening] = field(default_factory=dict)
    surnames: tuple[str, ...] = ()  # compound surnames first: 欧阳 before 欧

    @classmethod
    def load(
        cls, path: Path = CATALOGUE_PATH, default_language: str = "zh", prefix: str = "hotline"
    ) -> PromptCatalogue:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogueError(f"cannot read prompt catalogue {path}: {exc}") from exc
        budgets = _parse_budgets(data.pop(BUDGETS_TABLE, {}))
        openings = _parse_openings(data.pop(OPENINGS_TABLE, {}))
        surnames = _parse_surnames(data.pop(SURNAMES_TABLE, {}))
        languages = {code: _with_surnames(_parse_language(code, table), surnames)
                     for code, table in data.items()}
        if default_language not in languages:
            raise CatalogueError(f"default language {default_language!r} missing in {path}")
        return cls(languages=languages, default_language=default_language, prefix=prefix,
                   budgets=budgets, openings=openings, surnames=surnames)

    def budget(self, name: str) -> float | None:
        """The longest ``name`` may last in any language, in seconds (None: no budget);
        every surname's recording has the one budget ``surname``."""
        if name.startswith(SURNAME_PREFIX) and name not in self.budgets:
            return self.budgets.get("surname")
        return self.budgets.get(name)

    def has_language(self, language: str) -> bool:
        return language in self.languages

    def recorded_language(self, language: str) -> str:
        """The catalogue language that speaks for ``language``: itself, else the default."""
        return language if language in self.languages else self.default_language

    def path(self, name: str, language: str) -> str:
        """Asterisk prompt path (no extension) for ``name``, in ``language`` if recorded."""
        lang = self.languages.get(language)
        if lang is None or name not in lang.texts:
            lang = self.languages[self.default_language]
            if name not in lang.texts:
                raise KeyError(f"unknown prompt {name!r}")
        return f"{self.prefix}/{lang.code}/{name}"

    def has_prompt(self, name: str, language: str) -> bool:
        """True if ``name`` is recorded in ``language`` or in the default language."""
        return any(name in lang.texts for lang in (
            self.languages.get(language), self.languages[self.default_language]) if lang)

    def surname_of(self, name: str) -> str | None:
        """The recorded surname ``name`` starts with (a given name must follow), or None."""
        name = name.strip()
        return next((surname for surname in self.surnames
                     if name.startswith(surname) and len(name) > len(surname)), None)

    def address(self, name: str, gender: str | None, language: str) -> list[str]:
        """Prompt paths that address the elder by surname and honorific (张奶奶), both in
        ``language`` if it records them, else in the default language; empty when the
        gender is unknown or the surname not recorded."""
        honorific = HONORIFICS.get(gender or "")
        surname = self.surname_of(name)
        if honorific is None or surname is None:
            return []
        names = [surname_prompt(surname), honorific]
        for lang in (self.languages.get(language), self.languages[self.default_language]):
            if lang is not None and all(n in lang.texts for n in names):
                return [f"{self.prefix}/{lang.code}/{n}" for n in names]
        return []

    def number(self, value: int, language: str) -> list[str]:
        """Prompt paths that say ``value`` as a number (二十五), digit by digit above 99."""
        if not 0 <= value <= 99 or not self.has_prompt("ten", language):
            return self.digits(str(value), language)
        tens, units = divmod(value, 10)
        names = [] if tens == 0 else (["ten"] if tens == 1 else [f"digit_{tens}", "ten"])
        if units or not names:
            names.append(f"digit_{units}")
        return [self.path(name, language) for name in names]

    def digits(self, number: str, language: str) -> list[str]:
        """Prompt paths that read ``number`` digit by digit."""
        return [self.path(f"digit_{digit}", language) for digit in number if digit.isdigit()]


def _parse_language(code: str, table: object) -> PromptLanguage:
    if not isinstance(table, dict) or not isinstance(table.get("prompts"), dict):
        raise CatalogueError(f"language {code!r} needs a [{code}.prompts] table")
    texts = table["prompts"]
    for name, text in texts.items():
        if not _NAME.match(name) or not isinstance(text, str) or not text.strip():
            raise CatalogueError(f"bad prompt {code}.{name!r}: [a-z0-9_] name, non-empty text")
    return PromptLanguage(
        code=code,
        voice=str(table.get("voice", code)),
        words_per_minute=int(table.get("words_per_minute", 120)),
        texts=dict(texts),
    )


def surname_prompt(surname: str) -> str:
    """The prompt name of a surname's recording (ASCII, as Asterisk file names are)."""
    return SURNAME_PREFIX + "_".join(f"{ord(char):x}" for char in surname)


def _parse_surnames(table: object) -> tuple[str, ...]:
    if not isinstance(table, dict) or set(table) - {"single", "compound"}:
        raise CatalogueError(f"[{SURNAMES_TABLE}] takes single (a string of surnames) and "
                             "compound (a list of two-character surnames)")
    single, compound = table.get("single", ""), table.get("compound", [])
    if not isinstance(single, str) or (single and not _HAN.match(single)) \
            or not isinstance(compound, list) or not all(
                isinstance(s, str) and len(s) == 2 and _HAN.match(s) for s in compound):
        raise CatalogueError(f"[{SURNAMES_TABLE}]: surnames are Chinese characters")
    surnames = (*compound, *single)
    if len(set(surnames)) != len(surnames):
        raise CatalogueError(f"[{SURNAMES_TABLE}] lists a surname twice")
    return surnames


def _with_surnames(lang: PromptLanguage, surnames: tuple[str, ...]) -> PromptLanguage:
    """A language that records the honorifics records every surname too: each is one more
    prompt of its catalogue (built, imported and checked like the others)."""
    if not all(name in lang.texts for name in HONORIFICS.values()):
        return lang
    texts = dict(lang.texts) | {surname_prompt(s): s for s in surnames}
    return PromptLanguage(code=lang.code, voice=lang.voice,
                          words_per_minute=lang.words_per_minute, texts=texts)


def _parse_budgets(table: object) -> dict[str, float]:
    if not isinstance(table, dict):
        raise CatalogueError(f"[{BUDGETS_TABLE}] must map prompt names to seconds")
    budgets = {}
    for name, seconds in table.items():
        if not _NAME.match(name) or isinstance(seconds, bool) or not isinstance(
                seconds, (int, float)) or seconds <= 0:
            raise CatalogueError(f"bad budget {name!r}: a prompt name and seconds above 0")
        budgets[name] = float(seconds)
    return budgets


def _parse_openings(table: object) -> dict[str, Opening]:
    if not isinstance(table, dict):
        raise CatalogueError(f"[{OPENINGS_TABLE}.<prompt>] tables expected")
    openings = {}
    for name, spec in table.items():
        if not isinstance(spec, dict):
            raise CatalogueError(f"[{OPENINGS_TABLE}.{name}] must be a table")
        spec = dict(spec)
        within, keys = spec.pop("within_s", None), spec.pop("keys", None)
        if not isinstance(within, (int, float)) or isinstance(within, bool) or within <= 0 \
                or not isinstance(keys, str) or not keys.isdigit() or not spec \
                or not all(isinstance(text, str) and text for text in spec.values()):
            raise CatalogueError(f"[{OPENINGS_TABLE}.{name}] needs within_s, keys (digits) "
                                 "and the opening words per language")
        openings[name] = Opening(name, float(within), keys, spec)
    return openings


def synthesise(text: str, voice: str, words_per_minute: int, out: Path) -> None:
    """Speak ``text`` with espeak-ng into a telephone-ready WAV file."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (Debian package: espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            [espeak, "-v", voice, "-s", str(words_per_minute), "-w", str(raw), "--", text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        to_telephone(AudioSegment.from_wav(raw)).export(out, format="wav")


HOLD_NOTES_HZ = (523.25, 659.25, 783.99, 659.25)  # a soft C-major arpeggio
HOLD_NOTE_MS = 600
HOLD_GAP_MS = 400
HOLD_LEVEL_DBFS = -24.0


def hold_sound(seconds: float = 20.0) -> AudioSegment:
    """A quiet, slow chime for callers waiting in the operator queue."""
    from pydub.generators import Sine

    bar = AudioSegment.empty()
    for freq in HOLD_NOTES_HZ:
        note = Sine(freq, sample_rate=TELEPHONE_RATE).to_audio_segment(duration=HOLD_NOTE_MS)
        bar += note.fade_in(60).fade_out(300).apply_gain(HOLD_LEVEL_DBFS - note.dBFS)
        bar += AudioSegment.silent(duration=HOLD_GAP_MS, frame_rate=TELEPHONE_RATE)
    repeats = max(1, int(seconds * 1000 // len(bar)))
    return (bar * repeats).set_channels(1).set_sample_width(2).set_frame_rate(TELEPHONE_RATE)


def build(catalogue: PromptCatalogue, out_dir: Path = PROMPTS_DIR,
          names: Collection[str] = ()) -> list[Path]:
    """Render the prompts ``names`` (default: every prompt and the hold sound) in every
    language that has them; returns the files written."""
    unknown = set(names) - {n for lang in catalogue.languages.values() for n in lang.texts}
    if unknown:
        raise CatalogueError(f"not in the catalogue: {', '.join(sorted(unknown))}")
    written = []
    if not names:
        (out_dir / "moh").mkdir(parents=True, exist_ok=True)
        hold = out_dir / "moh" / "hold.wav"
        hold_sound().export(hold, format="wav")
        written.append(hold)
    for lang in catalogue.languages.values():
        target = out_dir / lang.code
        target.mkdir(parents=True, exist_ok=True)
        for name, text in lang.texts.items():
            if names and name not in names:
                continue
            out = target / f"{name}.wav"
            synthesise(text, lang.voice, lang.words_per_minute, out)
            written.append(out)
    return written
