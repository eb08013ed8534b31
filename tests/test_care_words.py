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
from ivr.prompts import PromptCatalogue


async def test_words_are_rendered_once_and_kept_whole(tmp_path: Path) -> None:
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
    assert len(warned) == 1 and "espeak-ng is not installed" in warned[0].getMessage()
    assert not list((tmp_path / "words").rglob("*.wav"))
