"""Emergency orders in flight, kept on disk until stored, so a killed engine loses none.

An emergency caller goes to the operator queue before the order is stored
(``ivr/emergency_orders.py``). In that window the call's spool record (the dialplan's own
format, ``agi_scripts/emergency_spool.py``) waits in a folder of this process under
``<spool>/inflight/``: written before the caller is routed, deleted once the order is
stored. The folder is held by an exclusive ``flock`` on its lock file for the process's
life. A process killed in between (SIGKILL, a crash, the OOM killer) leaves its folder, and
the kernel releases the lock: any engine's spool replay (:func:`adopt_orphans`) moves its
records into the spool, and the replay stores each order once (its business key is the
call's uniqueid, so an order the dead process did commit is not made twice).

A record is written without fsync: it outlives the process, not the host. Engines on other
hosts share nothing here; a host that dies keeps its records until it is back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from agi_scripts.emergency_spool import DIR_MODE, FILE_MODE, record_name

log = logging.getLogger(__name__)

INFLIGHT = "inflight"
LOCK_NAME = ".owner.lock"
NEW_PREFIX = "."  # a folder being set up, not yet locked: never adopted


class InflightOrders:
    """This process's in-flight records; the folder is made and locked on first use."""

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = Path(spool_dir)
        self.folder: Path | None = None
        self._lock_fd: int | None = None

    def hold(self, record: dict[str, Any], now: datetime) -> Path | None:
        """Write ``record`` until :meth:`release`; None (logged) if the disk refused it: the
        order is still stored, only a kill in the window would lose it."""
        try:
            folder = self._own_folder()
            name = record_name(record, now)
            temp = folder / f".{name}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                os.write(fd, json.dumps(record, ensure_ascii=False).encode("utf-8"))
            finally:
                os.close(fd)
            path = folder / name
            os.replace(temp, path)
            return path
        except OSError as exc:
            log.error("in-flight record of emergency call %s not written in %s: %s",
                      record.get("uniqueid"), self.spool_dir / INFLIGHT, exc)
            return None

    @staticmethod
    def release(path: Path | None) -> None:
        """The order is stored (or spooled): its record is no longer needed."""
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def to_spool(self, path: Path) -> Path:
        """Move a held record into the spool for the replay, durably (a stop's hand-over
        must outlive the host); OSError if the disk refuses."""
        _sync(path)
        target = _move(path, self.spool_dir)
        _sync(self.spool_dir)
        return target

    def close(self) -> None:
        """At a clean stop: remove the folder if nothing is left in it, release the lock.
        Records still there are adopted by the next replay, as after a kill."""
        folder, fd = self.folder, self._lock_fd
        self.folder, self._lock_fd = None, None
        if folder is None or fd is None:
            return
        try:
            if not any(entry.name != LOCK_NAME for entry in os.scandir(folder)):
                (folder / LOCK_NAME).unlink()
                folder.rmdir()
        except OSError as exc:
            log.warning("in-flight folder %s not removed: %s", folder, exc)
        finally:
            os.close(fd)

    def _own_folder(self) -> Path:
        if self.folder is not None:
            return self.folder
        parent = self.spool_dir / INFLIGHT
        parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        new = parent / f"{NEW_PREFIX}{token}"
        new.mkdir(mode=DIR_MODE)
        fd = os.open(new / LOCK_NAME, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            folder = parent / token
            os.replace(new, folder)
        except OSError:
            os.close(fd)
            raise
        self.folder, self._lock_fd = folder, fd
        return folder


def adopt_orphans(spool_dir: Path) -> list[str]:
    """Move the records of every in-flight folder whose process has died into the spool;
    returns their file names. A live process's folder (its lock held) is left alone."""
    parent = Path(spool_dir) / INFLIGHT
    try:
        folders = [entry for entry in os.scandir(parent)
                   if entry.is_dir(follow_symlinks=False)
                   and not entry.name.startswith(NEW_PREFIX)]
    except FileNotFoundError:
        return []
    adopted: list[str] = []
    for entry in folders:
        adopted += _adopt(Path(entry.path), Path(spool_dir))
    return adopted


def _adopt(folder: Path, spool_dir: Path) -> list[str]:
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:  # another replay adopted it a moment ago
        return []
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []  # its process is alive
        moved = []
        for entry in os.scandir(folder):
            if entry.name == LOCK_NAME:
                continue
            if entry.name.startswith("."):  # a write the kill cut short: never routed
                os.unlink(entry.path)
                continue
            moved.append(_move(Path(entry.path), spool_dir).name)
        _sync(spool_dir)
        (folder / LOCK_NAME).unlink()
        folder.rmdir()
    except OSError as exc:
        log.error("in-flight folder %s of a dead engine not adopted: %s", folder, exc)
        return []
    finally:
        os.close(fd)
    if moved:
        log.warning("%d emergency order(s) of a dead engine taken from %s into the spool",
                    len(moved), folder.name)
    return moved


def _move(path: Path, spool_dir: Path) -> Path:
    """A record into the spool, under its own name (the same file system: a rename)."""
    target = spool_dir / path.name
    os.replace(path, target)
    return target


def _sync(path: Path) -> None:
    """fsync a file or a folder."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
