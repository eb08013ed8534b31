"""Asterisk configuration files (queues.conf, musiconhold.conf, pjsip.conf, modules.conf).

``[name](!)`` declares a template, ``[name](tpl,...)`` starts with the options of the named
earlier sections, ``;`` starts a comment, ``key = value`` and ``key => value`` set an option,
``#include "file"`` and ``#tryinclude "file"`` read another file in place, continuing the
current section (relative to this one, as Asterisk reads it from its config directory; a
missing one is an error only for ``#include``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sim.parties import PartyError

_SECTION = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?$")
_INCLUDE = re.compile(r'^#(include|tryinclude)\s+"?([^"]+?)"?$')
MAX_INCLUDE_DEPTH = 10


@dataclass
class Section:
    """One ``[name]`` block; a name may repeat (pjsip.conf: a seat's endpoint and its aor)."""

    name: str
    template: bool = False
    options: dict[str, str] = field(default_factory=dict)
    lines: list[tuple[str, str]] = field(default_factory=list)  # as written, repeats kept


TRUE_WORDS = frozenset({"yes", "true", "y", "t", "1", "on"})  # ast_true()
FALSE_WORDS = frozenset({"no", "false", "n", "f", "0", "off"})  # ast_false()


def ast_true(value: str | None) -> bool:
    """Asterisk's ast_true(): yes, true, y, t, 1 or on, in any case."""
    return (value or "").strip().lower() in TRUE_WORDS


def read_sections(path: Path) -> list[Section]:
    """Every section in file order, parents' options applied; PartyError names file and line.

    ``options`` keeps the last value of a repeated option, ``lines`` every one (ACL rules,
    ``allow``)."""
    sections: list[Section] = []
    _read(path, sections, 0)
    return sections


def read_conf(path: Path) -> dict[str, dict[str, str]]:
    """Each section's options by name, templates left out (a repeated name merges)."""
    merged: dict[str, dict[str, str]] = {}
    for section in read_sections(path):
        if not section.template:
            merged.setdefault(section.name, {}).update(section.options)
    return merged


def _read(path: Path, sections: list[Section], depth: int,
          current: Section | None = None) -> Section | None:
    """Read ``path`` into ``sections``, its first lines continuing ``current``; returns the
    section open at its end."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PartyError(f"cannot read {path}: {exc}") from None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        include = _INCLUDE.match(line)
        if include is not None:
            target = path.parent / include.group(2).strip()
            if depth >= MAX_INCLUDE_DEPTH:
                raise PartyError(f"{where}: includes nested too deeply")
            if target.is_file():
                current = _read(target, sections, depth + 1, current)
            elif include.group(1) == "include":
                raise PartyError(f"{where}: #include {target} does not exist")
            continue
        head = _SECTION.match(line)
        if head is not None:
            current = Section(head.group(1).strip())
            for parent in (p.strip() for p in (head.group(2) or "").split(",")):
                if parent == "!":
                    current.template = True
                elif parent:
                    base = next((s for s in reversed(sections) if s.name == parent), None)
                    if base is None:
                        raise PartyError(f"{where}: template {parent!r} is not defined above")
                    current.options.update(base.options)
                    current.lines.extend(base.lines)
            sections.append(current)
            continue
        key, sep, value = line.partition("=")
        if current is None or not sep or not key.strip():
            raise PartyError(f"{where}: expected [section] or option = value, got {line!r}")
        name, value = key.strip(), value.removeprefix(">").strip()
        current.options[name] = value
        current.lines.append((name, value))
    return current


def loaded_modules(path: Path) -> set[str]:
    """The modules a modules.conf with ``autoload = no`` loads (``load``, ``require`` and
    ``preload`` lines of [modules]); with autoload on, PartyError: that list says nothing."""
    for section in read_sections(path):
        if section.name != "modules":
            continue
        if section.options.get("autoload", "yes").lower() not in ("no", "false", "0", "off"):
            raise PartyError(f"{path}: autoload is on; the loaded modules are not listed")
        return {value for key, value in section.lines
                if key in ("load", "require", "preload", "preload-require")}
    raise PartyError(f"{path}: no [modules] section")
