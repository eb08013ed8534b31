"""Music on hold (musiconhold.conf): its classes, and the class a waiting channel hears.

Only what a caller notices is modelled: which class plays and its ``announcement``, the sound
res_musiconhold plays when the caller is put on hold (and, in Asterisk, between songs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sim.conf import read_conf
from sim.parties import PartyError

MODES = frozenset({"files", "playlist", "custom", "mp3", "mp3nb", "quietmp3", "quietmp3nb"})
_NEED_DIRECTORY = MODES - {"playlist", "custom"}


@dataclass(frozen=True)
class MohClass:
    name: str
    mode: str
    announcement: str = ""


@dataclass
class MusicOnHold:
    classes: dict[str, MohClass] = field(default_factory=dict)
    prefer_channel_class: bool = True  # [general] preferchannelclass, yes by default

    def load_conf(self, path: Path) -> int:
        """Read the classes of a musiconhold.conf; returns how many. A class Asterisk would
        refuse (no or unknown mode, no directory for a file mode) is a PartyError here."""
        classes: dict[str, MohClass] = {}
        for name, options in read_conf(path).items():
            if name == "general":
                prefer = options.get("preferchannelclass", "yes").lower()
                self.prefer_channel_class = prefer in ("yes", "true", "y", "t", "1", "on")
                continue
            mode = options.get("mode", "").lower()
            if mode not in MODES:
                raise PartyError(f"{path}: class [{name}] needs mode = one of "
                                 f"{', '.join(sorted(MODES))}, got {mode or 'none'!r}")
            if mode in _NEED_DIRECTORY and not options.get("directory"):
                raise PartyError(f"{path}: class [{name}] (mode {mode}) needs a directory")
            classes[name] = MohClass(name, mode, options.get("announcement", ""))
        self.classes.update(classes)
        return len(classes)

    def pick(self, channel_class: str, app_class: str) -> MohClass | None:
        """The class res_musiconhold starts: CHANNEL(musicclass) before the application's
        class (after it with preferchannelclass=no), then ``default``; unknown names skipped."""
        order = (channel_class, app_class) if self.prefer_channel_class else (
            app_class, channel_class)
        for name in (*order, "default"):
            if name and name in self.classes:
                return self.classes[name]
        return None
