"""A site's own recordings: imported for the telephone, and the prompt files checked against
the catalogue (missing, wrong format, over budget); the no-menu flag from the command line."""

from __future__ import annotations

import shutil
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatch.db import make_sync_engine, upgrade
from dispatch.models import Elder
from ivr.audio import AudioSegment
from ivr.cli import main
from ivr.prompts import PROMPTS_DIR


def _recording(path: Path, seconds: float, rate: int, channels: int, width: int,
               gain_db: float = -20.0, silence_ms: int = 1500) -> Path:
    """A tone between two stretches of silence, in the given WAV format."""
    from pydub.generators import Sine

    tone = Sine(440, sample_rate=rate).to_audio_segment(duration=seconds * 1000)
    tone = tone.apply_gain(gain_db - tone.max_dBFS)
    quiet = AudioSegment.silent(duration=silence_ms, frame_rate=rate)
    audio = (quiet + tone + quiet).set_channels(channels).set_sample_width(width)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio.export(path, format="wav")
    return path


def _shape(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as wav:
        return (wav.getframerate(), wav.getsampwidth(), wav.getnchannels(),
                wav.getnframes() / wav.getframerate())


def test_recordings_are_imported_for_the_telephone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, out = tmp_path / "studio", tmp_path / "prompts"
    _recording(source / "zh" / "welcome.wav", 2.0, 44_100, 2, 3)  # CD stereo, 24-bit
    _recording(source / "no_input.wav", 1.5, 16_000, 1, 1, gain_db=-30.0)  # 8-bit, quiet
    _recording(source / "yue" / "menu_main.wav", 30.0, 8_000, 1, 2)  # over its budget
    _recording(source / "zh" / "nonsense.wav", 1.0, 8_000, 1, 2)  # no such prompt
    (source / "zh" / "order_goodbye.wav").write_bytes(b"RIFF not really a wave file")
    assert main(["prompts", "import", str(source), "--dir", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "2 recordings imported, 3 refused" in printed
    assert "over the budget of 16.5 s" in printed and "no prompt 'nonsense'" in printed
    assert "order_goodbye.wav: cannot read it" in printed
    for name, tone_s in (("welcome", 2.0), ("no_input", 1.5)):
        rate, width, channels, seconds = _shape(out / "zh" / f"{name}.wav")
        assert (rate, width, channels) == (8000, 2, 1)
        assert tone_s < seconds < tone_s + 0.6  # the 1.5 s silences trimmed to short pads
        level = AudioSegment.from_wav(out / "zh" / f"{name}.wav").max_dBFS
        assert -4.0 < level < -2.0  # normalised: quiet and loud recordings alike
    assert not (out / "yue" / "menu_main.wav").exists()


def test_check_reports_missing_wrong_format_and_over_budget(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, prompts)
    assert main(["prompts", "check", "--dir", str(prompts)]) == 0
    assert "0 problem(s)" in capsys.readouterr().out
    (prompts / "yue" / "welcome.wav").unlink()
    _recording(prompts / "zh" / "goodbye.wav", 1.0, 16_000, 1, 2, silence_ms=100)
    _recording(prompts / "zh" / "no_input.wav", 9.0, 8_000, 1, 2, silence_ms=100)
    assert main(["prompts", "check", "--dir", str(prompts)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("3 problem(s)")
    assert any(line.startswith("yue/welcome: missing") for line in lines)
    assert "zh/goodbye: wrong format: 16000 Hz, 16-bit, 1 channel(s); needs 8000 Hz, " \
           "16-bit, mono" in lines
    assert "zh/no_input: 9.2 s, over its budget of 6 s" in lines


def test_the_installed_prompts_pass_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prompts", "check"]) == 0, capsys.readouterr().out


def test_no_menu_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'h.sqlite3'}"
    monkeypatch.setenv("HOTLINE_DATABASE__URL", url)
    monkeypatch.setenv("HOTLINE_AMI__ENABLED", "false")
    upgrade(url)
    engine = make_sync_engine(url)
    try:
        with engine.begin() as conn:
            elder_id = conn.execute(Elder.__table__.insert().values(
                name="张秀英", preferred_language="zh", subsidy_category="none",
                created_at=datetime.now(UTC))).inserted_primary_key[0]

        def flag() -> bool:
            with engine.connect() as conn:
                return bool(conn.scalar(select(Elder.no_menu).where(Elder.id == elder_id)))

        assert main(["elder", "no-menu", str(elder_id), "on"]) == 0 and flag()
        assert main(["elder", "no-menu", str(elder_id), "off"]) == 0 and not flag()
        assert main(["elder", "no-menu", str(elder_id + 1), "on"]) == 1
        assert f"no elder {elder_id + 1}" in capsys.readouterr().err
    finally:
        engine.dispose()
