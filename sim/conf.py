"""Asterisk configuration files (queues.conf, musiconhold.conf): sections and their options.

``[name](!)`` declares a template, ``[name](tpl,...)`` starts with the options of the named
earlier sections, ``;`` starts a comment, ``key = value`` and ``key => value`` set an option
(a repeated option keeps its last value). Templates are not returned.
"""

from __future__ import annotations

import re
from pathlib import Path

from sim.parties import PartyError

_SECTION = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?$")


def read_conf(path: Path) -> dict[str, dict[str, str]]:
    """Each section's options, templates applied; PartyError names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PartyError(f"cannot read {path}: {exc}") from None
    sections: dict[str, dict[str, str]] = {}
    templates: set[str] = set()
    current: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        head = _SECTION.match(line)
        if head is not None:
            name = head.group(1).strip()
            current = sections.setdefault(name, {})
            for parent in (p.strip() for p in (head.group(2) or "").split(",")):
                if parent == "!":
                    templates.add(name)
                elif parent in sections and parent != name:
                    current.update(sections[parent])
                elif parent:
                    raise PartyError(f"{where}: template {parent!r} is not defined above")
            continue
        key, sep, value = line.partition("=")
        if current is None or not sep or not key.strip():
            raise PartyError(f"{where}: expected [section] or option = value, got {line!r}")
        current[key.strip()] = value.removeprefix(">").strip()
    return {name: options for name, options in sections.items() if name not in templates}
