"""Where the product's data files are: prompts, grammar, PBX configuration, AGI scripts.

They ship as package data (``recordings``, ``asterisk_conf``, ``dialplans`` and
``agi_scripts`` are packages of their own), so an installed wheel finds them exactly as a
source checkout does, with no path into a source tree.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(package: str) -> Path:
    """The folder of an installed data package, e.g. ``package_dir("recordings")``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"data package {package!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def prompts_dir() -> Path:
    """The prompt catalogue and its renderings, one folder per language."""
    return package_dir("recordings") / "prompts"


def asterisk_conf_dir() -> Path:
    """The Asterisk configuration; its ``extensions.conf`` includes ``dialplans/*.conf``."""
    return package_dir("asterisk_conf")


def agi_scripts_dir() -> Path:
    """The classic AGI scripts that work without the engine."""
    return package_dir("agi_scripts")
