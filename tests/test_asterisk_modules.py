"""The shipped modules.conf loads every hard dependency of every module it loads, and every
configuration file those modules read is shipped (tests/data/asterisk_module_deps.toml, taken
from the Asterisk 22.10.1 sources)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "asterisk_conf"
TABLE = ROOT / "tests" / "data" / "asterisk_module_deps.toml"
_LOAD = re.compile(r"^load\s*=>?\s*(\S+)$")


def table() -> dict[str, Any]:
    return tomllib.loads(TABLE.read_text(encoding="utf-8"))


def loaded_modules(text: str) -> list[str]:
    """The ``load =`` lines of modules.conf's [modules] (autoload must be off)."""
    section, autoload, loads = "", None, []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "modules" and line.startswith("autoload"):
            autoload = line.partition("=")[2].strip()
        elif section == "modules" and (match := _LOAD.match(line)):
            loads.append(match.group(1))
    assert autoload == "no", "modules.conf must say autoload = no"
    return loads


def missing_dependencies(loads: list[str], data: dict[str, Any]) -> list[str]:
    """``module needs dependency`` for each hard dependency that is not loaded."""
    modules, present = data["modules"], {name.removesuffix(".so") for name in loads}
    present |= set(data["builtin"])
    problems = []
    for name in loads:
        entry = modules.get(name)
        if entry is None:
            problems.append(f"{name} is not in {TABLE.name}")
            continue
        for need in sorted({*entry["requires"], *entry["depend"]} - present):
            problems.append(f"{name} needs {need}.so")
    return problems


def test_every_dependency_of_a_loaded_module_is_loaded() -> None:
    loads = loaded_modules((CONF / "modules.conf").read_text(encoding="utf-8"))
    assert "res_pjsip_exten_state.so" in loads
    assert missing_dependencies(loads, table()) == []


def test_a_missing_dependency_is_named() -> None:
    text = "[modules]\nautoload = no\nload => res_pjsip.so\nload => res_pjsip_exten_state.so\n"
    problems = missing_dependencies(loaded_modules(text), table())
    assert "res_pjsip_exten_state.so needs res_pjsip_outbound_publish.so" in problems
    assert "res_pjsip_exten_state.so needs res_pjsip_pubsub.so" in problems
    assert "res_pjsip.so needs res_pjproject.so" in problems
    assert not any("dnsmgr" in problem for problem in problems)  # built into the core


@pytest.mark.parametrize("entry", table()["configs"], ids=lambda entry: entry["file"])
def test_every_config_file_a_loaded_module_needs_is_shipped(entry: dict[str, Any]) -> None:
    loads = loaded_modules((CONF / "modules.conf").read_text(encoding="utf-8"))
    assert entry["module"] == "core" or entry["module"] in loads, entry
    assert entry["source"]
    if entry["ship"]:
        assert (CONF / entry["file"]).is_file(), f"{entry['file']} ({entry['module']})"
    else:
        assert entry["why"]
