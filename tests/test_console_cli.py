"""The console's command line: accounts created with the password on stdin (no default
account), the audit report, and ``hotline console`` serving on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.account_store import SignIn, sign_in
from ivr.cli import _in_session, main
from ivr.config import load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "hotline.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "h.sqlite3"}"\n'
                    "[ami]\nenabled = false\n", encoding="utf-8")
    return path


def _hotline(config: Path, *args: str, stdin: str = "") -> int:
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return main(["--config", str(config), *args])
    finally:
        sys.stdin = saved


def test_user_add_reads_the_password_and_the_audit_report_shows_its_use(
        config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _hotline(config, "report", "audit") == 0
    assert capsys.readouterr().out.strip() == "0 audit entries"  # no account, no login
    add = ("user", "add", "li", "--role", "admin", "--region", "province:620000",
           "--seat", "op1001")
    assert _hotline(config, *add, stdin="a long secret phrase\n") == 0
    assert capsys.readouterr().out.strip() == "account li (admin, province:620000) created"
    assert _hotline(config, *add, stdin="another long phrase\n") == 2
    assert "exists already" in capsys.readouterr().err
    assert _hotline(config, "user", "add", "wu", "--role", "operator", "--region",
                    "county:62012", stdin="a long secret phrase\n") == 2
    assert "six digits" in capsys.readouterr().err
    assert _hotline(config, "user", "add", "wu", "--role", "operator", "--region",
                    "county:620121", stdin="short\n") == 2
    assert "at least 10 characters" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # there is no way to give the password as an argument
        _hotline(config, "user", "add", "wu", "--role", "operator", "--region",
                 "county:620121", "--password", "a long secret phrase")
    capsys.readouterr()

    async def login(session: AsyncSession) -> SignIn:
        return await sign_in(session, "li", "a long secret phrase", "10.1.2.3",
                             datetime.now(UTC), 5)

    url = load_settings(config).database.url
    assert asyncio.run(_in_session(url, login)).account is not None
    assert _hotline(config, "report", "audit", "--since", "2000-01-01") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "1 audit entry"
    assert lines[1].split()[2:5] == ["li", "10.1.2.3", "login"]
    assert _hotline(config, "user", "add", "wu", "--role", "operator") == 2
    assert "needs --role and --region" in capsys.readouterr().err
    assert _hotline(config, "user", "disable", "li") == 0
    assert _hotline(config, "user", "disable", "li") == 1
    assert asyncio.run(_in_session(url, login)).account is None  # the right password


def test_hotline_console_serves_on_loopback(config: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ivr.cli", "--config", str(config), "console", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=tmp_path)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("console on http://127.0.0.1:"), line
        url = line.removeprefix("console on ")
        with urllib.request.urlopen(f"{url}login", timeout=30) as answer:
            assert answer.status == 200
            assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
            assert 'name="csrf_token"' in answer.read().decode()
    finally:
        process.terminate()
        process.wait(timeout=30)
