"""Configuration: defaults, environment overrides, and readable errors for broken input."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.cli import main
from ivr.config import ConfigError, load_settings, redacted


def test_ami_has_no_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOTLINE_AMI__SECRET", raising=False)
    with pytest.raises(ConfigError, match=r"ami\.secret is empty"):
        load_settings(None)


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hotline.toml"
    config.write_text('[ami]\nsecret = "from-file"\nport = 6000\n[ivr]\nlocal_area_code = "28"\n')
    monkeypatch.setenv("HOTLINE_AMI__PORT", "7000")
    settings = load_settings(config)
    assert settings.ami.secret == "from-file"
    assert settings.ami.port == 7000
    assert settings.ivr.local_area_code == "28"
    assert settings.agi.host == "127.0.0.1"  # loopback unless configured
    assert settings.ami.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ami\nsecret=1", "not valid TOML"),
        ('[agi]\nport = "many"\n[ami]\nsecret="x"', "agi.port"),
        ('[ivr]\nlocal_area_code = "0931"\n[ami]\nsecret="x"', "ivr.local_area_code"),
        ('[database]\nurl = "mysql://x"\n[ami]\nsecret="x"', "database.url"),
        ('[nonsense]\nx = 1\n[ami]\nsecret="x"', "nonsense"),
        ('[dispatch.retry.no_kye]\ntries = 2\n[ami]\nsecret="x"', "no_kye"),
        ('[money.categories.sanwuu]\nvoucher_yuan = 100\nshare = 0.8\n[ami]\nsecret="x"',
         "unknown subsidy categories: sanwuu"),
        ('[money.categories.sanwu]\nvoucher_yuan = 100\nshare = 1.5\n[ami]\nsecret="x"',
         "money.categories.sanwu.share"),
        ('[money.categories.dibao]\nvoucher_yuan = -1\nshare = 0.5\n[ami]\nsecret="x"',
         "money.categories.dibao.voucher_yuan"),
        ('[care]\nallowed_from = "21:00"\nallowed_until = "09:00"\n[ami]\nsecret="x"',
         "allowed_from must be before"),
        ('[redis]\nsentinels = ["10.0.0.5"]\n[ami]\nsecret="x"', "a Sentinel address is host:port"),
        ('[redis]\nsentinels = ["h:26379/0"]\n[ami]\nsecret="x"', "redis.sentinels"),
        ('[redis]\nsentinel_service = "a b"\n[ami]\nsecret="x"', "redis.sentinel_service"),
        ('[ami]\nsecret="x"\n[[pbxs]]\nname="b"\nport=5039', "pbxs\\[0\\].secret is empty"),
        ('[ami]\nsecret="x"\n[[pbxs]]\nsecret="y"', "'pbx' is used by another box"),
        ('[ami]\nsecret="x"\nendpoints=["trunk"]\n[[pbxs]]\nname="b"\nsecret="y"\n'
         'endpoints=["trunk"]', "'trunk' is already on box 'pbx'"),
        ('[ami]\nsecret="x"\n[[pbxs]]\nname="b"\nsecret="y"\nendpoints=["a\\r\\nAction: x"]',
         "is not an endpoint name"),
        ('[ami]\nsecret="x"\n[[pbxs]]\nname="b c"\nsecret="y"', "pbxs.0.name"),
    ],
)
def test_broken_config_gives_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_cli_reports_config_errors_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[agi]\nport = 70000\n[ami]\nsecret="x"')
    assert main(["--config", str(config), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert "agi.port" in err and "Traceback" not in err


def test_cli_config_check_hides_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ok.toml"
    config.write_text('[ami]\nsecret = "s3cr3t-value"\n')
    assert main(["--config", str(config), "config", "check"]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t-value" not in out and '"secret": "***"' in out


def test_explicit_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DATABASE__URL", "postgresql://prod@db/hotline")
    settings = load_settings(None, database={"url": "sqlite:///var/demo.sqlite3"},
                             ami={"enabled": False})
    assert settings.database.url == "sqlite:///var/demo.sqlite3"


def test_cli_config_check_hides_every_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ok.toml"
    config.write_text(
        '[database]\nurl = "postgresql://hotline:db-pa%3Ass@db.internal:5432/hotline"\n'
        '[redis]\nurl = "redis://:redis-pass@redis.internal:6379/0"\n'
        '[ami]\nsecret = "s3cr3t-value"\n'
        '[[pbxs]]\nname = "county-b"\nsecret = "second-box-secret"\nendpoints = ["trunk-b"]\n'
    )
    monkeypatch.delenv("HOTLINE_DATABASE__URL", raising=False)
    monkeypatch.delenv("HOTLINE_REDIS__URL", raising=False)
    assert main(["--config", str(config), "config", "check"]) == 0
    out = capsys.readouterr().out
    for secret in ("db-pa", "redis-pass", "s3cr3t-value", "second-box-secret"):
        assert secret not in out
    assert '"url": "postgresql://hotline:***@db.internal:5432/hotline"' in out
    assert '"url": "redis://:***@redis.internal:6379/0"' in out


def test_redacted_hides_fields_named_like_secrets_and_url_passwords() -> None:
    shown = redacted({
        "a": {"api_token": "t0k", "db_password": "pw", "secret": "", "name": "x"},
        "urls": ["amqp://u:p@h/", "https://h/path?q=1", "postgresql://u@h/d"],
    })
    assert shown == {
        "a": {"api_token": "***", "db_password": "***", "secret": "", "name": "x"},
        "urls": ["amqp://u:***@h/", "https://h/path?q=1", "postgresql://u@h/d"],
    }


def test_a_malformed_database_url_is_not_repeated_with_its_password() -> None:
    from dispatch.db import make_sync_engine

    with pytest.raises(ValueError, match="not a database URL") as caught:
        make_sync_engine("postgresql://hotline:s3cr3t-db@db.internal:notaport/hotline")
    assert "s3cr3t-db" not in str(caught.value)
