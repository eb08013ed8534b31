"""A site's own recordings in place of the synthesised prompts, and the check of the prompt
files against the catalogue.

``hotline prompts import DIR`` takes audio files named after catalogue prompts
(``DIR/<language>/<name>.wav``, or ``DIR/<name>.wav`` for one language), converts each to
what Asterisk plays (8 kHz, 16-bit, mono), trims its silences and normalises its level
(``ivr.audio.to_telephone``, as for the synthesised prompts) and writes it in the prompts
folder. ``hotline prompts check`` lists every catalogue prompt missing in a language, in the
wrong format, or over its duration budget.
"""

from __future__ import annotations

import warnings
import wave
from dataclasses import dataclass, field
from pathlib import Path

from ivr.audio import SAMPLE_WIDTH, TELEPHONE_RATE, AudioSegment, to_telephone
from ivr.prompts import PromptCatalogue

AUDIO_SUFFIXES = (".wav", ".wave", ".mp3", ".ogg", ".flac", ".m4a", ".aac", ".wma")


@dataclass(frozen=True, slots=True)
class Problem:
    """One prompt file that is not as the catalogue wants it."""

    language: str
    prompt: str
    reason: str

    def __str__(self) -> str:
        return f"{self.language}/{self.prompt}: {self.reason}"


def _duration(path: Path) -> float:
    """Seconds of a telephone WAV; ValueError if it is not 8 kHz 16-bit mono PCM."""
    try:
        with wave.open(str(path), "rb") as wav:
            shape = (wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
            seconds = wav.getnframes() / wav.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"not a PCM WAV file ({exc})") from None
    if shape != (TELEPHONE_RATE, SAMPLE_WIDTH, 1):
        raise ValueError(f"{shape[0]} Hz, {8 * shape[1]}-bit, {shape[2]} channel(s); "
                         f"needs {TELEPHONE_RATE} Hz, 16-bit, mono")
    return seconds


def check_prompts(catalogue: PromptCatalogue, prompts_dir: Path) -> list[Problem]:
    """Every catalogue prompt, in every language that has it, missing in ``prompts_dir``,
    in the wrong format, or over its budget."""
    problems = []
    for lang in catalogue.languages.values():
        for name in lang.texts:
            path = prompts_dir / lang.code / f"{name}.wav"
            if not path.is_file():
                problems.append(Problem(lang.code, name, f"missing ({path})"))
                continue
            try:
                seconds = _duration(path)
            except (OSError, ValueError) as exc:
                problems.append(Problem(lang.code, name, f"wrong format: {exc}"))
                continue
            budget = catalogue.budget(name)
            if budget is not None and seconds > budget:
                problems.append(Problem(lang.code, name,
                                        f"{seconds:.1f} s, over its budget of {budget:g} s"))
    return problems


@dataclass
class ImportReport:
    imported: list[Path] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{len(self.imported)} recordings imported, {len(self.refused)} refused"]
        lines += [f"  refused {line}" for line in self.refused]
        return "\n".join(lines)


def _sources(source: Path, catalogue: PromptCatalogue, language: str
             ) -> list[tuple[str, Path]]:
    """(language, file) for the audio files in ``source`` and its language folders."""
    found = []
    for item in sorted(source.iterdir()):
        if item.is_dir() and item.name in catalogue.languages:
            found += [(item.name, f) for f in sorted(item.iterdir())
                      if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES]
        elif item.is_file() and item.suffix.lower() in AUDIO_SUFFIXES:
            found.append((language, item))
    return found


def import_recordings(source: Path, catalogue: PromptCatalogue, prompts_dir: Path,
                      language: str | None = None) -> ImportReport:
    """Convert the recordings in ``source`` into ``prompts_dir``. A file named after no
    catalogue prompt of its language, unreadable, silent or over its prompt's budget is
    refused (the prompt in place stays), with the reason in the report."""
    language = language or catalogue.default_language
    if language not in catalogue.languages:
        raise ValueError(f"language {language!r} is not in the prompt catalogue")
    if not source.is_dir():
        raise ValueError(f"{source} is not a folder")
    report = ImportReport()
    for code, path in _sources(source, catalogue, language):
        name = path.stem
        label = f"{path}: "
        if name not in catalogue.languages[code].texts:
            report.refused.append(label + f"no prompt {name!r} in language {code}")
            continue
        try:
            with warnings.catch_warnings():  # pydub warns when it looks for ffmpeg
                warnings.simplefilter("ignore", RuntimeWarning)
                segment = AudioSegment.from_file(path)
        except Exception as exc:  # pydub raises several kinds for undecodable audio
            report.refused.append(label + f"cannot read it ({type(exc).__name__}; a "
                                  "compressed or floating-point file needs ffmpeg)")
            continue
        if len(segment) == 0 or segment.max == 0:
            report.refused.append(label + "it is silent")
            continue
        shaped = to_telephone(segment)
        budget = catalogue.budget(name)
        if budget is not None and shaped.duration_seconds > budget:
            report.refused.append(label + f"{shaped.duration_seconds:.1f} s after trimming, "
                                          f"over the budget of {budget:g} s")
            continue
        target = prompts_dir / code / f"{name}.wav"
        target.parent.mkdir(parents=True, exist_ok=True)
        shaped.export(target, format="wav")
        report.imported.append(target)
    return report
