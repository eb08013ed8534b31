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


def _seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def test_every_prompt_lasts_within_its_budget() -> None:
    """A longer (re-)recording fails here, not on an elder's call."""
    catalogue = PromptCatalogue.load()
    for lang in catalogue.languages.values():
        for name in lang.texts:
            budget = catalogue.budget(name)
            assert budget is not None, f"{name} has no [budget_s] entry"
            seconds = _seconds(PROMPTS_DIR / lang.code / f"{name}.wav")
            assert seconds <= budget, f"{lang.code}/{name}: {seconds:.2f} s > {budget} s"


def test_budgets_of_the_way_to_a_human_keep_the_goals() -> None:
    """The budgets on each path, with the waits for a key, add up within its goal, leaving
    ENGINE_ALLOWANCE_S for the engine and the PBX."""
    from ivr.config import IvrSettings
    from ivr.demo.time_to_human import GOALS
    from ivr.menu import RETRY_TIMEOUT_MS

    allowance = 3.0
    budget = PromptCatalogue.load().budget
    wait_s, retry_s = IvrSettings().menu_timeout_ms / 1000, RETRY_TIMEOUT_MS / 1000
    silent = budget("welcome") + budget("menu_main") + wait_s + budget("no_input") + retry_s
    assert silent + allowance <= GOALS["silence"].seconds
    # a wrong key at the end of the menu's wait, another at the end of the re-prompt's
    wrong = budget("welcome") + budget("menu_main") + wait_s + budget("invalid_input") + retry_s
    assert wrong + allowance <= GOALS["wrong_keys"].seconds
    assert budget("unknown_caller") + allowance <= GOALS["unknown_caller"].seconds


def test_the_menu_opens_with_emergency_and_operator_within_eight_seconds(
        tmp_path: Path) -> None:
    """The words naming 9 and 0 open the menu in every language that has it, and spoken
    alone (as the menu starts) they end within the opening's time."""
    catalogue = PromptCatalogue.load()
    opening = catalogue.openings["menu_main"]
    assert opening.within_s <= 8.0 and set(opening.keys) == {"9", "0"}
    for lang in catalogue.languages.values():
        if "menu_main" not in lang.texts:
            continue
        words = opening.texts[lang.code]
        assert lang.texts["menu_main"].startswith(words), lang.code
        for key in opening.keys:
            assert lang.texts[f"digit_{key}"] in words, (lang.code, key)
        out = tmp_path / f"{lang.code}.wav"
        synthesise(words, lang.voice, lang.words_per_minute, out)
        assert _seconds(out) <= opening.within_s, (lang.code, _seconds(out))


def test_budgets_and_openings_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "catalogue.toml"
    base = '[zh]\nvoice = "cmn"\n[zh.prompts]\nwelcome = "x"\n'
    bad.write_text(base + '[budget_s]\nwelcome = -1\n')
    with pytest.raises(CatalogueError, match="budget"):
        PromptCatalogue.load(bad)
    bad.write_text(base + '[opening.welcome]\nwithin_s = 8\nzh = "x"\n')
    with pytest.raises(CatalogueError, match="opening"):
        PromptCatalogue.load(bad)


def test_elders_are_addressed_by_surname_and_honorific() -> None:
    catalogue = PromptCatalogue.load()
    assert catalogue.surname_of("欧阳秀英") == "欧阳"  # compound before 欧
    assert catalogue.surname_of(" 张桂兰") == "张"
    assert catalogue.surname_of("禤明") is None  # not recorded
    assert catalogue.surname_of("张") is None  # a surname alone is no name
    assert catalogue.address("张桂兰", "F", "zh") == [
        "hotline/zh/surname_5f20", "hotline/zh/honorific_female"]
    assert catalogue.address("欧阳建国", "M", "zh") == [
        "hotline/zh/surname_6b27_9633", "hotline/zh/honorific_male"]
    # a language without the honorifics is greeted in the default language, as a whole
    assert catalogue.address("张桂兰", "F", "ko") == catalogue.address("张桂兰", "F", "zh")
    assert catalogue.address("张桂兰", None, "zh") == []
    assert catalogue.address("张桂兰", "X", "zh") == []
    assert catalogue.address("禤明", "M", "zh") == []
    assert catalogue.address("", "M", "zh") == []


def test_surnames_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "catalogue.toml"
    base = '[zh]\nvoice = "cmn"\n[zh.prompts]\nwelcome = "x"\n'
    for table in ('single = "张张"', 'single = "Zhang"', 'compound = ["欧"]',
                  'single = "x"\nother = 1', 'compound = "欧阳"'):
        bad.write_text(base + f"[surnames]\n{table}\n")
        with pytest.raises(CatalogueError, match="surname"):
            PromptCatalogue.load(bad)
    bad.write_text(base + 'honorific_female = "奶奶"\nhonorific_male = "爷爷"\n'
                   '[surnames]\nsingle = "王"\ncompound = ["上官"]\n')
    catalogue = PromptCatalogue.load(bad)
    assert {"surname_738b", "surname_4e0a_5b98"} <= set(catalogue.languages["zh"].texts)
