"""The committed prompts match the catalogue and are what Asterisk plays: 8 kHz 16-bit mono WAV."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from ivr.flows.inbound import QUEUE_REASSURANCE
from ivr.prompts import PROMPTS_DIR, CatalogueError, PromptCatalogue, synthesise
from sim.moh import DataDir, MusicOnHold


def test_every_catalogue_prompt_is_recorded_for_the_telephone() -> None:
    catalogue = PromptCatalogue.load()
    for lang in catalogue.languages.values():
        for name in lang.texts:
            path = PROMPTS_DIR / lang.code / f"{name}.wav"
            with wave.open(str(path), "rb") as wav:
                assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
                assert wav.getnframes() > 8000 * 0.3, f"{path} is shorter than 0.3 s"


def test_hold_sound_is_recorded_quiet_for_the_telephone() -> None:
    from ivr.audio import AudioSegment

    hold = AudioSegment.from_wav(PROMPTS_DIR / "moh" / "hold.wav")
    assert (hold.frame_rate, hold.sample_width, hold.channels) == (8000, 2, 1)
    assert len(hold) >= 15_000 and hold.dBFS < -20


def test_every_language_has_its_queue_reassurances() -> None:
    """musiconhold.conf has the hold class the dialplan names for each reason and catalogue
    language, announcing the prompt the engine leaves to the queue, with the same fallback."""
    moh = MusicOnHold(data_dir=DataDir(mounts={"sounds/hotline": PROMPTS_DIR}))  # installed
    moh.load_conf(PROMPTS_DIR.parents[1] / "asterisk_conf" / "musiconhold.conf")
    catalogue = PromptCatalogue.load()
    for code in catalogue.languages:
        for reason, prompt in (("emergency", "emergency"), ("operator", QUEUE_REASSURANCE)):
            hold = moh.classes[f"hotline-{reason}-{code}"]
            assert hold.announcement == catalogue.path(prompt, code), hold
    assert catalogue.recorded_language("yue") == "yue"
    assert catalogue.recorded_language("ko") == "zh"


def test_paths_fall_back_to_the_default_language() -> None:
    catalogue = PromptCatalogue.load()
    assert catalogue.path("menu_main", "yue") == "hotline/yue/menu_main"
    assert catalogue.path("welcome_family", "yue") == "hotline/zh/welcome_family"
    assert catalogue.path("menu_main", "ko") == "hotline/zh/menu_main"
    assert catalogue.digits("2026", "zh") == [
        "hotline/zh/digit_2", "hotline/zh/digit_0", "hotline/zh/digit_2", "hotline/zh/digit_6"
    ]
    with pytest.raises(KeyError):
        catalogue.path("no_such_prompt", "zh")


def test_malformed_catalogue_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "catalogue.toml"
    bad.write_text('[zh]\nvoice = "cmn"\n[zh.prompts]\n"Bad Name" = "x"\n')
    with pytest.raises(CatalogueError):
        PromptCatalogue.load(bad)
    bad.write_text('[yue.prompts]\nwelcome = "x"\n')
    with pytest.raises(CatalogueError, match="default language"):
        PromptCatalogue.load(bad)


def test_synthesis_produces_slow_telephone_audio(tmp_path: Path) -> None:
    assert shutil.which("espeak-ng"), "espeak-ng (Debian package) is required to build prompts"
    slow, fast = tmp_path / "slow.wav", tmp_path / "fast.wav"
    text = "助餐送餐请按一"
    synthesise(text, "cmn", 120, slow)
    synthesise(text, "cmn", 175, fast)
    with wave.open(str(slow), "rb") as a, wave.open(str(fast), "rb") as b:
        assert a.getframerate() == 8000 and a.getnchannels() == 1
        assert a.getnframes() > b.getnframes() * 1.2  # elder pace: clearly slower than default
