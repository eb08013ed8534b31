"""Music on hold (musiconhold.conf): its classes, and the class a waiting channel hears.

Only what a caller notices is modelled: which class plays and its ``announcement``, the sound
res_musiconhold plays when the caller is put on hold (and, in Asterisk, between songs).

As res_musiconhold (moh_scan_files), a ``directory`` that does not start with ``/`` is read
from Asterisk's data directory (``<astdatadir>/<directory>``). A ``files`` class whose
directory cannot be opened, or holds no file, is not loaded (an error is logged); with no
class loaded, music on hold is off.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sim.conf import read_conf
from sim.parties import PartyError

log = logging.getLogger(__name__)

MODES = frozenset({"files", "playlist", "custom", "mp3", "mp3nb", "quietmp3", "quietmp3nb"})
_NEED_DIRECTORY = MODES - {"playlist", "custom"}


@dataclass(frozen=True)
class MohClass:
    name: str
    mode: str
    announcement: str = ""


@dataclass
class DataDir:
    """Asterisk's astdatadir as the simulator sees it: ``root`` (if any), and folders of it
    that live elsewhere here (``sounds/hotline`` is the prompts folder, as installed)."""

    root: Path | None = None
    mounts: Mapping[str, Path] = field(default_factory=dict)

    def resolve(self, directory: str) -> Path | None:
        """Where a musiconhold.conf ``directory`` is; None when nothing holds it."""
        if directory.startswith("/"):
            return Path(directory)
        relative = PurePosixPath(directory)
        for mount, path in self.mounts.items():
            if relative == PurePosixPath(mount) or PurePosixPath(mount) in relative.parents:
                return path.joinpath(*relative.parts[len(PurePosixPath(mount).parts):])
        return self.root / directory if self.root is not None else None


@dataclass
class MusicOnHold:
    classes: dict[str, MohClass] = field(default_factory=dict)
    prefer_channel_class: bool = True  # [general] preferchannelclass, yes by default
    data_dir: DataDir = field(default_factory=DataDir)

    def load_conf(self, path: Path) -> int:
        """Read the classes of a musiconhold.conf; returns how many loaded. A class without a
        mode or a directory is a PartyError here; one whose directory has no file is left out
        with an error logged, as Asterisk does."""
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
            directory = options.get("directory", "")
            if mode in _NEED_DIRECTORY and not directory:
                raise PartyError(f"{path}: class [{name}] (mode {mode}) needs a directory")
            if mode == "files" and not self._has_files(name, directory):
                continue
            classes[name] = MohClass(name, mode, options.get("announcement", ""))
        self.classes.update(classes)
        if not self.classes:
            log.warning("No music on hold classes configured, disabling music on hold.")
        return len(classes)

    def _has_files(self, name: str, directory: str) -> bool:
        """moh_scan_files(): the class's directory opens and holds at least one file."""
        where = self.data_dir.resolve(directory)
        try:
            files = [p for p in where.iterdir() if p.is_file()] if where else None
        except OSError as exc:
            log.error("Error opening directory - %s: %s", where, exc.strerror)
            return False
        if files is None:
            log.error("Error opening directory - %s: no data directory", directory)
            return False
        if not files:
            log.info("Files not found in %s for moh class:%s", directory, name)
            return False
        return True

    def pick(self, channel_class: str, app_class: str) -> MohClass | None:
        """The class res_musiconhold starts: CHANNEL(musicclass) before the application's
        class (after it with preferchannelclass=no), then ``default``; unknown names skipped."""
        order = (channel_class, app_class) if self.prefer_channel_class else (
            app_class, channel_class)
        for name in (*order, "default"):
            if name and name in self.classes:
                return self.classes[name]
        return None
