"""Code maps: which Contact ID event code means what, per alarm device model.

A map is TOML (see ``alarm_codes.toml`` beside this module, the default): a ``[codes]``
table for every model and ``[models."<name>"]`` tables that override single codes. Codes
are three HEX-notation digits; a code missing from both is :attr:`AlarmKind.UNKNOWN`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dispatch.models import AlarmKind

__all__ = [
    "DEFAULT_CODE_MAP_PATH",
    "EMERGENCY_KINDS",
    "TEST_KINDS",
    "TROUBLE_KINDS",
    "CodeMap",
    "CodeMapError",
    "load_code_map",
    "parse_code_map",
]

DEFAULT_CODE_MAP_PATH = Path(__file__).with_name("alarm_codes.toml")
MAX_FILE_BYTES = 1024 * 1024

EMERGENCY_KINDS = frozenset({
    AlarmKind.PERSONAL_EMERGENCY, AlarmKind.MEDICAL, AlarmKind.FALL, AlarmKind.INACTIVITY,
    AlarmKind.UNKNOWN,
})
TEST_KINDS = frozenset({AlarmKind.PERIODIC_TEST, AlarmKind.MANUAL_TEST})
TROUBLE_KINDS = frozenset({
    AlarmKind.POWER_LOSS, AlarmKind.LOW_BATTERY, AlarmKind.SUPERVISION_LOSS,
})

_CODE = re.compile(r"^[0-9B-F]{3}$")
_MAPPABLE = frozenset(AlarmKind) - {AlarmKind.UNKNOWN}


class CodeMapError(ValueError):
    """A code map that cannot be used; the text says where and why."""


def _empty() -> Mapping[str, AlarmKind]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class CodeMap:
    codes: Mapping[str, AlarmKind] = field(default_factory=_empty)
    models: Mapping[str, Mapping[str, AlarmKind]] = field(default_factory=_empty)

    def kind(self, model: str | None, code: str) -> AlarmKind:
        """The kind of ``code`` for a device of ``model`` (None: an unregistered device)."""
        override = self.models.get(model) if model is not None else None
        if override is not None and code in override:
            return override[code]
        return self.codes.get(code, AlarmKind.UNKNOWN)


def _table(where: str, raw: Any) -> Mapping[str, AlarmKind]:
    if not isinstance(raw, dict):
        raise CodeMapError(f"{where} must be a table of \"code\" = \"kind\"")
    out: dict[str, AlarmKind] = {}
    for code, kind in raw.items():
        if not _CODE.match(code):
            raise CodeMapError(f"{where}: {code!r} is not a 3-digit Contact ID event code")
        if kind not in _MAPPABLE:
            allowed = ", ".join(sorted(_MAPPABLE))
            raise CodeMapError(f"{where}.{code}: unknown kind {kind!r} (one of: {allowed})")
        out[code] = AlarmKind(kind)
    return MappingProxyType(out)


def parse_code_map(text: str, source: str = "code map") -> CodeMap:
    """Parse and validate a TOML code map."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CodeMapError(f"{source} is not valid TOML: {exc}") from exc
    unknown = set(data) - {"codes", "models"}
    if unknown:
        raise CodeMapError(f"{source}: unexpected table(s) {sorted(unknown)}")
    models_raw = data.get("models", {})
    if not isinstance(models_raw, dict):
        raise CodeMapError(f"{source}: models must be a table of model tables")
    models = {
        name: _table(f"{source}: models.{name}", table) for name, table in models_raw.items()
    }
    return CodeMap(_table(f"{source}: codes", data.get("codes", {})), MappingProxyType(models))


def load_code_map(path: Path | None = None) -> CodeMap:
    """Read a code map file (the bundled default when ``path`` is None)."""
    path = DEFAULT_CODE_MAP_PATH if path is None else path
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CodeMapError(f"cannot read code map {path}: {exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise CodeMapError(f"code map {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodeMapError(f"code map {path} is not UTF-8: {exc}") from exc
    return parse_code_map(text, str(path))
