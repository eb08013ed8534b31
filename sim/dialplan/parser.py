"""Parser for extensions.conf: contexts, extensions, priorities, labels, includes, globals."""

from __future__ import annotations

import glob as globmod
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from sim.dialplan.patterns import PatternError, compile_pattern, is_pattern, matches, sort_key

log = logging.getLogger(__name__)

_SECTION = re.compile(r"^\[([^\]]+)\](?:\(([^)]*)\))?\s*$")
_PRIORITY = re.compile(r"^(\d+|n|hint)(?:\(([^)]*)\))?$", re.I)
_SETTINGS_SECTIONS = {"general"}


class DialplanError(Exception):
    """The dialplan has a syntax error; the message names file and line."""


@dataclass
class Step:
    """One priority of an extension."""

    priority: int
    app: str
    data: str
    label: str | None
    where: str


@dataclass
class Extension:
    name: str
    steps: dict[int, Step] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)

    def next_priority(self, after: int) -> int | None:
        later = [p for p in self.steps if p > after]
        return min(later) if later else None


@dataclass
class Context:
    name: str
    extensions: dict[str, Extension] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)
    hints: dict[str, str] = field(default_factory=dict)  # exten -> devices (``PJSIP/x&...``)
    _patterns: list[Extension] | None = None

    def patterns(self) -> list[Extension]:
        if self._patterns is None:
            pats = [e for e in self.extensions.values() if is_pattern(e.name)]
            self._patterns = sorted(pats, key=lambda e: sort_key(e.name))
        return self._patterns


@dataclass
class Dialplan:
    contexts: dict[str, Context] = field(default_factory=dict)
    globals: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def find(self, context: str, exten: str) -> Extension | None:
        """The extension that handles ``exten`` in ``context`` (own extensions, then includes)."""
        return self._find(context, exten, set())

    def _find(self, context: str, exten: str, seen: set[str]) -> Extension | None:
        if context in seen:
            return None
        seen.add(context)
        ctx = self.contexts.get(context)
        if ctx is None:
            return None
        found = ctx.extensions.get(exten)
        if found is not None and not is_pattern(found.name):
            return found
        for ext in ctx.patterns():
            if matches(ext.name, exten):
                return ext
        for inc in ctx.includes:
            found = self._find(inc, exten, seen)
            if found is not None:
                return found
        return None

    def hint(self, context: str, exten: str) -> str | None:
        """The devices of ``exten``'s hint in ``context`` or a context it includes (what a
        SUBSCRIBE for busy lamps is answered from)."""
        seen: set[str] = set()
        stack = [context]
        while stack:
            name = stack.pop(0)
            if name in seen or name not in self.contexts:
                continue
            seen.add(name)
            ctx = self.contexts[name]
            if exten in ctx.hints:
                return ctx.hints[exten]
            stack.extend(ctx.includes)
        return None

    def candidates(self, context: str) -> list[Extension]:
        """All extensions reachable from ``context`` (for match-more decisions)."""
        out: list[Extension] = []
        seen: set[str] = set()
        stack = [context]
        while stack:
            name = stack.pop(0)
            if name in seen or name not in self.contexts:
                continue
            seen.add(name)
            ctx = self.contexts[name]
            out.extend(ctx.extensions.values())
            stack.extend(ctx.includes)
        return out


def load(paths: list[Path]) -> Dialplan:
    """Load files and directories (every ``*.conf`` in a directory, sorted)."""
    plan = Dialplan()
    loader = _Loader(plan)
    for path in paths:
        if path.is_dir():
            for child in sorted(path.glob("*.conf")):
                loader.load_file(child)
        elif path.is_file():
            loader.load_file(path)
        else:
            raise DialplanError(f"{path}: no such dialplan file or directory")
    return plan


def parse_text(text: str, name: str = "<text>") -> Dialplan:
    plan = Dialplan()
    _Loader(plan).parse(text, name, None)
    return plan


class _Loader:
    def __init__(self, plan: Dialplan) -> None:
        self.plan = plan
        self.loaded: set[Path] = set()
        self.depth = 0

    def load_file(self, path: Path) -> None:
        real = path.resolve()
        if real in self.loaded:
            return
        self.loaded.add(real)
        self.plan.files.append(real)
        try:
            text = real.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DialplanError(f"{path}: cannot read: {exc}") from exc
        self.parse(text, str(path), real.parent)

    def parse(self, text: str, fname: str, base: Path | None) -> None:
        section: str | None = None
        last_exten: str | None = None
        last_prio = 0
        in_block_comment = False
        for lineno, raw in enumerate(text.splitlines(), 1):
            where = f"{fname}:{lineno}"
            line, in_block_comment = _strip_comments(raw, in_block_comment)
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                self._directive(line, where, base)
                continue
            m = _SECTION.match(line)
            if m:
                section = m.group(1).strip()
                if m.group(2) is not None:
                    raise DialplanError(f"{where}: context templates are not supported")
                if section not in ("globals", *_SETTINGS_SECTIONS):
                    self.plan.contexts.setdefault(section, Context(section))
                last_exten, last_prio = None, 0
                continue
            if section is None:
                raise DialplanError(f"{where}: line outside of any [context]: {line!r}")
            if section in _SETTINGS_SECTIONS:
                continue
            key, sep, value = _split_assignment(line)
            if not sep:
                raise DialplanError(f"{where}: expected 'name => value': {line!r}")
            if section == "globals":
                self.plan.globals[key] = value
                continue
            lkey = key.lower()
            ctx = self.plan.contexts[section]
            if lkey == "include":
                if not value:
                    raise DialplanError(f"{where}: include needs a context name")
                ctx.includes.append(value.split(",")[0].strip())
            elif lkey in ("exten", "same"):
                last_exten, last_prio = self._extension(
                    ctx, lkey, value, where, last_exten, last_prio
                )
            elif lkey in ("ignorepat", "switch", "eswitch", "lswitch"):
                log.warning("%s: %s is ignored by the simulator", where, lkey)
            else:
                raise DialplanError(f"{where}: unknown keyword {key!r}")

    def _directive(self, line: str, where: str, base: Path | None) -> None:
        word, _, rest = line.partition(" ")
        word = word.lower()
        if word not in ("#include", "#tryinclude"):
            raise DialplanError(f"{where}: unsupported directive {word!r}")
        target = rest.strip().strip('"').strip("<>").strip()
        if not target:
            raise DialplanError(f"{where}: {word} needs a file name")
        if base is None:
            raise DialplanError(f"{where}: {word} is only allowed in files")
        pattern = target if target.startswith("/") else str(base / target)
        found = sorted(globmod.glob(pattern))
        if not found:
            log.warning("%s: %s %s matched no file", where, word, target)
            return
        self.depth += 1
        if self.depth > 20:
            raise DialplanError(f"{where}: #include nested too deeply")
        try:
            for item in found:
                self.load_file(Path(item))
        finally:
            self.depth -= 1

    def _extension(
        self, ctx: Context, kind: str, value: str, where: str, last_exten: str | None,
        last_prio: int,
    ) -> tuple[str | None, int]:
        if kind == "same":
            if last_exten is None:
                raise DialplanError(f"{where}: 'same =>' without a previous extension")
            exten = last_exten
            prio_field, sep, rest = value.partition(",")
        else:
            exten, sep, rest = value.partition(",")
            exten = exten.strip()
            prio_field, sep, rest = rest.partition(",")
        if not sep:
            raise DialplanError(f"{where}: expected 'exten => name,priority,App(args)'")
        if not exten:
            raise DialplanError(f"{where}: empty extension name")
        if "/" in exten:
            raise DialplanError(f"{where}: caller-ID matching ({exten!r}) is not supported")
        if is_pattern(exten):
            try:
                compile_pattern(exten)
            except PatternError as exc:
                raise DialplanError(f"{where}: {exc}") from None
        m = _PRIORITY.match(prio_field.strip())
        if not m:
            raise DialplanError(f"{where}: bad priority {prio_field.strip()!r}")
        prio_word, label = m.group(1).lower(), m.group(2)
        if prio_word == "hint":
            if not rest.strip():
                raise DialplanError(f"{where}: a hint needs a device, e.g. PJSIP/{exten}")
            ctx.hints[exten] = rest.strip()
            return exten, last_prio
        if prio_word == "n":
            if kind == "exten" and exten != last_exten:
                raise DialplanError(f"{where}: priority 'n' needs a previous priority of {exten}")
            prio = last_prio + 1
        else:
            prio = int(prio_word)
        app, data = _split_app(rest.strip(), where)
        ext = ctx.extensions.get(exten)
        if ext is None:
            ext = ctx.extensions[exten] = Extension(exten)
            ctx._patterns = None
        if prio in ext.steps:
            log.warning("%s: %s,%d already defined in [%s]; ignored", where, exten, prio, ctx.name)
            return exten, prio
        ext.steps[prio] = Step(prio, app, data, label, where)
        if label:
            ext.labels[label.strip()] = prio
        return exten, prio


def _strip_comments(raw: str, in_block: bool) -> tuple[str, bool]:
    out: list[str] = []
    i = 0
    while i < len(raw):
        if in_block:
            end = raw.find("--;", i)
            if end < 0:
                return "".join(out), True
            i = end + 3
            in_block = False
            continue
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw) and raw[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if raw.startswith(";--", i):
            in_block = True
            i += 3
            continue
        if ch == ";":
            break
        out.append(ch)
        i += 1
    return "".join(out), in_block


def _split_assignment(line: str) -> tuple[str, bool, str]:
    m = re.match(r"^([^=>]+?)\s*=>?\s*(.*)$", line)
    if not m:
        return line, False, ""
    return m.group(1).strip(), True, m.group(2).strip()


def _split_app(text: str, where: str) -> tuple[str, str]:
    if not text:
        raise DialplanError(f"{where}: missing application")
    paren = text.find("(")
    comma = text.find(",")
    if paren >= 0 and (comma < 0 or paren < comma):
        app = text[:paren].strip()
        if not text.endswith(")"):
            raise DialplanError(f"{where}: missing ')' in {text!r}")
        data = text[paren + 1 : -1]
    elif comma >= 0:
        app, data = text[:comma].strip(), text[comma + 1 :]
    else:
        app, data = text.strip(), ""
    if not app or not re.match(r"^[A-Za-z0-9_]+$", app):
        raise DialplanError(f"{where}: bad application name {app!r}")
    return app, data
