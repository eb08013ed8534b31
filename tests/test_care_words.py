"""A caring call's own words: rendered once per text and language (callers at the same
moment share the rendering), kept whole, and replaced by the recorded prompt when they
cannot be spoken."""

from __future__ import annotations

import asyncio
import logging
import wave
from pathlib import Path

import pytest

from ivr.care_words import CareWords
from ivr.prompts import PromptCatalogue, synthesise


async def test_words_are_rendered_once_and_kept_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[str] = []

    def counted(text: str, *args: object) -> None:
        rendered.append(text)
        synthesise(text, *args)  # type: ignore[arg-type]

    monkeypatch.setattr("ivr.care_words.synthesise", counted)
    words = CareWords(tmp_path / "words", PromptCatalogue.load())
    text = "-w /etc/passwd 记得吃降压药"  # words that look like options are words
    first, second, other = await asyncio.gather(
        words.path(text, "zh"), words.path(text, "zh"), words.path("明天上午复诊", "ko"))
    assert first == second and first is not None and other is not None
    assert first.startswith(str(tmp_path / "words" / "zh" / "words_"))
    assert other.startswith(str(tmp_path / "words" / "zh" / "words_"))  # ko: zh speaks
    assert sorted(p.name for p in (tmp_path / "words" / "zh").iterdir()) == sorted(
        [Path(first).name + ".wav", Path(other).name + ".wav"])
    with wave.open(first + ".wav", "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (8000, 1)
        assert wav.getnframes() > 8000  # the words, not an error
    assert sorted(rendered) == sorted([text, "明天上午复诊"])  # each once, shared at once
    assert await words.path(text, "zh") == first and len(rendered) == 2  # kept
    assert await words.path(text, "yue") != first  # another voice, another file


async def test_words_that_cannot_be_spoken_give_way_to_the_recorded_prompt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng to be found
    words = CareWords(tmp_path / "words", PromptCatalogue.load())
    with caplog.at_level(logging.WARNING, logger="ivr.care_words"):
        assert await words.path("记得吃药", "zh") is None
        assert await words.path("记得复诊", "zh") is None
    warned = [r for r in caplog.records if r.name == "ivr.care_words"]
    # one warning for the two failures in a minute, naming the cause
    assert len(warned) == 1 and "espeak-ng is not installed" in warned[0].getMessage()
    assert not list((tmp_path / "words").rglob("*.wav"))


async def test_a_broken_rendering_of_any_kind_gives_way_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise EOFError("not a WAV file")  # what a truncated synthesiser output raises

    monkeypatch.setattr("ivr.care_words.synthesise", broken)
    words = CareWords(tmp_path / "words", PromptCatalogue.load())
    assert await words.path("记得吃药", "zh") is None
    assert not list((tmp_path / "words").rglob("*.wav"))
