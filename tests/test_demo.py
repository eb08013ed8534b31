"""The main job, scaled down: every call ends in an order or a route to a human."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.demo.runner import run_demo


@pytest.mark.timeout(600)  # the demo follows every order to its quality callback
async def test_demo_accounts_for_every_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert await run_demo(calls=40, speed=60.0, seed=7, elders=400, vendors=6) == 0
    out = capsys.readouterr().out
    assert "calls placed                         40" in out
    assert "calls without an order or a human    0" in out
    assert "RESULT: every call ended in an order or a route to a human" in out
    assert (tmp_path / "var" / "demo" / "hotline.sqlite3").exists()
