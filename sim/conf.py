"""Asterisk configuration files (queues.conf, musiconhold.conf): sections and their options.

``[name](!)`` declares a template, ``[name](tpl,...)`` starts with the options of the named
earlier sections, ``;`` starts a comment, ``key = value`` and ``key => value`` set an option
(a repeated option keeps its last value). Templates are not returned. ``#include "file"``
reads another file in place (a relative name beside the including file, as Asterisk reads it
from its config directory); ``#tryinclude`` does the same but a missing file is no error.
"""

from __future__ import annotations

import re
from pathlib import Path

from sim.parties import PartyError

_SECTION = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?$")


_INCLUDE = re.compile(r'^#(include|tryinclude)\s+"?([^"]+?)"?$')
_MAX_DEPTH = 10


def read_conf(path: Path) -> dict[str, dict[str, str]]:
    """Each section's options, templates applied; PartyError names the file and line."""
    return _Reader().read(path)


class _Reader:
    def __init__(self) -> None:
        self.sections: dict[str, dict[str, str]] = {}
        self.templates: set[str] = set()
        self.current: dict[str, str] | None = None

    def read(self, path: Path) -> dict[str, dict[str, str]]:
        self._file(path, 0)
        return {name: options for name, options in self.sections.items()
                if name not in self.templates}

    def _file(self, path: Path, depth: int) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PartyError(f"cannot read {path}: {exc}") from None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split(";", 1)[0].strip()
            if line:
                self._line(line, f"{path}:{number}", path, depth)

    def _line(self, line: str, where: str, path: Path, depth: int) -> None:
        include = _INCLUDE.match(line)
        if include is not None:
            target = path.parent / include.group(2).strip()
            if depth >= _MAX_DEPTH:
                raise PartyError(f"{where}: includes nested deeper than {_MAX_DEPTH}")
            if target.is_file() or include.group(1) == "include":
                self._file(target, depth + 1)
            return
        sections, templates = self.sections, self.templates
        head = _SECTION.match(line)
        if head is not None:
            name = head.group(1).strip()
            current = self.current = sections.setdefault(name, {})
            for parent in (p.strip() for p in (head.group(2) or "").split(",")):
                if parent == "!":
                    templates.add(name)
                elif parent in sections and parent != name:
                    current.update(sections[parent])
                elif parent:
                    raise PartyError(f"{where}: template {parent!r} is not defined above")
            return
        key, sep, value = line.partition("=")
        if self.current is None or not sep or not key.strip():
            raise PartyError(f"{where}: expected [section] or option = value, got {line!r}")
        self.current[key.strip()] = value.removeprefix(">").strip()
