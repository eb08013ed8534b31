"""Asterisk AlarmReceiver spool files: find, parse, and move them once handled.

AlarmReceiver writes one file per call into its ``eventspooldir`` (``event-XXXXXX``, mode
0600) and raises no AMI event, so the spool is scanned. A file looks like::

    <blank><blank>[metadata]<blank>PROTOCOL=ADEMCO_CONTACT_ID  CHECKSUM=yes
    CALLINGFROM=...  CALLERNAME=...  TIMESTAMP=...<blank>[events]<blank>
    one 16-digit message per line, in DTMF notation (see dispatch.contact_id)

(one item per line; with ``nogroupmetadata`` the section headers are absent and each
message line reads ``event=<message>``). Handled files move to ``processed/``; files that
cannot be used move to ``quarantine/`` with ``<name>.reason`` beside them. Nothing is
deleted and no file is ever overwritten.

File names are whatever the directory holds: a name that is not UTF-8 (Python keeps its
bytes as surrogate escapes) or is too long to be recorded is a defect of the file, and
:func:`shown_name` is the only form of a name that goes into logs, notes and reports.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dispatch.contact_id import ContactIdError, ContactIdMessage, Notation, parse

__all__ = [
    "MAX_FILE_BYTES",
    "PROCESSED_DIR",
    "QUARANTINE_DIR",
    "QuarantineNoteError",
    "SpoolContent",
    "SpoolFile",
    "SpoolFileError",
    "move_to_processed",
    "parse_spool",
    "pending_files",
    "quarantine",
    "read_spool_file",
    "shown_name",
]

PROCESSED_DIR = "processed"
QUARANTINE_DIR = "quarantine"
FILE_PREFIX = "event-"
MAX_FILE_BYTES = 64 * 1024  # about 3,800 events: far more than one call delivers
MAX_NAME_LENGTH = 64
FUTURE_TOLERANCE_S = 5.0
PROTOCOL = "ADEMCO_CONTACT_ID"
_REQUIRED = ("PROTOCOL", "CHECKSUM", "CALLINGFROM", "CALLERNAME", "TIMESTAMP")
_UNKNOWN = "<unknown>"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class SpoolFileError(Exception):
    """A spool file that cannot be used. ``reason`` goes to the quarantine note.

    ``incomplete``: the text ends early, as it does while AlarmReceiver is still writing;
    ``modified_at``: the file's modification time (epoch seconds) when it was read.
    """

    def __init__(self, reason: str, calling_from: str | None = None, *,
                 incomplete: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.calling_from = calling_from
        self.incomplete = incomplete
        self.modified_at: float | None = None


class QuarantineNoteError(OSError):
    """The file is in ``quarantine/`` (at ``target``) but its ``.reason`` note could not be
    written (a full disk, say); no partial note is left behind."""

    def __init__(self, target: Path, cause: OSError) -> None:
        super().__init__(cause.errno, f"reason note not written: {cause.strerror or cause}")
        self.target = target


def shown_name(name: str) -> str:
    """``name`` as logs, notes and reports show it: bytes that are not UTF-8 as ``\\xNN``,
    control characters (a line break could forge a log line) and backslashes escaped."""
    shown = []
    for char in name:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif char == "\\":
            shown.append("\\\\")
        elif not char.isprintable():
            shown.append(char.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            shown.append(char)
    return "".join(shown)


def _disk_name(name: str) -> str:
    """A name safe to create anywhere: the shown name with any character other than
    letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``."""
    return _UNSAFE_NAME_CHARS.sub("_", shown_name(name))


def _check_name(name: str, calling_from: str | None) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise SpoolFileError(f"file name {shown_name(name)} is not valid UTF-8",
                             calling_from) from None
    if len(name) > MAX_NAME_LENGTH:
        raise SpoolFileError(f"file name longer than {MAX_NAME_LENGTH} characters",
                             calling_from)


@dataclass(frozen=True, slots=True)
class SpoolContent:
    """The parsed text of one file."""

    calling_from: str | None  # as Asterisk wrote it; None for "<unknown>"
    caller_name: str | None
    timestamp_text: str
    messages: tuple[ContactIdMessage, ...]


@dataclass(frozen=True, slots=True)
class SpoolFile:
    path: Path
    sha256: str
    received_at: datetime  # the file's modification time: when Asterisk wrote it
    content: SpoolContent

    @property
    def name(self) -> str:
        return self.path.name


def _known(value: str) -> str | None:
    return None if value in ("", _UNKNOWN) else value


def _metadata_line(line: str, metadata: dict[str, str], number: int) -> None:
    key, sep, value = line.partition("=")
    if not sep or key not in _REQUIRED:
        raise SpoolFileError(f"line {number}: unexpected metadata line {line[:40]!r}")
    if key in metadata:
        raise SpoolFileError(f"line {number}: {key} given twice")
    metadata[key] = value


def _lines(data: bytes) -> list[str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpoolFileError(f"not UTF-8 text: {exc}") from None
    if "\x00" in text:
        raise SpoolFileError("contains NUL bytes")
    if not text.endswith("\n"):
        raise SpoolFileError("truncated: the last line has no line end", incomplete=True)
    return [line.rstrip("\r") for line in text.split("\n")[:-1]]


def parse_spool(data: bytes) -> SpoolContent:
    """Parse a whole spool file; raise :class:`SpoolFileError` on any defect."""
    metadata: dict[str, str] = {}
    events: list[tuple[int, str]] = []
    section: str | None = None
    saw_events_header = False
    for number, line in enumerate(_lines(data), start=1):
        if not line.strip():
            continue
        if line in ("[metadata]", "[events]"):
            section = line[1:-1]
            saw_events_header |= section == "events"
        elif line.startswith("["):
            raise SpoolFileError(f"line {number}: unknown section {line[:40]!r}")
        elif section == "events":
            events.append((number, line))
        elif section is None and line.startswith("event="):
            events.append((number, line[len("event="):]))
        else:
            _metadata_line(line, metadata, number)
    calling_from = _known(metadata.get("CALLINGFROM", ""))
    missing = [key for key in _REQUIRED if key not in metadata]
    if missing:
        raise SpoolFileError(f"metadata incomplete: missing {', '.join(missing)}", calling_from,
                             incomplete=True)
    if metadata["PROTOCOL"] != PROTOCOL:
        raise SpoolFileError(f"unsupported protocol {metadata['PROTOCOL'][:40]!r}", calling_from)
    if metadata["CHECKSUM"] != "yes":
        raise SpoolFileError("messages were received without checksum", calling_from)
    if section is not None and not saw_events_header:
        raise SpoolFileError("truncated: no [events] section", calling_from, incomplete=True)
    if not events:
        raise SpoolFileError("no events in the file", calling_from, incomplete=True)
    messages = []
    for number, text in events:
        try:
            messages.append(parse(text, Notation.DTMF))
        except ContactIdError as exc:
            raise SpoolFileError(f"line {number}: {exc}", calling_from) from None
    return SpoolContent(
        calling_from=calling_from,
        caller_name=_known(metadata["CALLERNAME"]),
        timestamp_text=metadata["TIMESTAMP"],
        messages=tuple(messages),
    )


def read_spool_file(path: Path) -> SpoolFile:
    """Read and parse one file without following links; errors become SpoolFileError.

    A file whose name cannot be recorded (not UTF-8, too long) is refused after its text
    is parsed, so that the error still names the calling line.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SpoolFileError("not a regular file (symbolic link)") from None
        raise SpoolFileError(f"unreadable: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpoolFileError("not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise SpoolFileError(f"larger than {MAX_FILE_BYTES} bytes")
        chunks = []
        remaining = MAX_FILE_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise SpoolFileError(f"unreadable: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise SpoolFileError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        content = parse_spool(data)
    except SpoolFileError as exc:
        exc.modified_at = info.st_mtime
        raise
    _check_name(path.name, content.calling_from)
    return SpoolFile(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        received_at=datetime.fromtimestamp(info.st_mtime, UTC),
        content=content,
    )


def pending_files(spool_dir: Path, min_age_s: float, wall_time: float | None = None
                  ) -> tuple[list[Path], list[Path]]:
    """Spool files to handle now, oldest first, and those too young (maybe still written).

    ``min_age_s`` is compared with the files' modification times on the wall clock
    (``wall_time``, default now). A file dated further in the future than a few seconds
    (a clock step) counts as ready, so it cannot wait forever. Subdirectories and other
    names are ignored.
    """
    wall = time.time() if wall_time is None else wall_time
    ready: list[tuple[float, str, Path]] = []
    young: list[Path] = []
    with os.scandir(spool_dir) as entries:
        for entry in entries:
            if not entry.name.startswith(FILE_PREFIX) or entry.name.endswith(".reason"):
                continue
            if entry.is_dir(follow_symlinks=False):
                continue
            try:
                mtime = entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue  # taken by a concurrent scan
            path = Path(spool_dir) / entry.name
            if -FUTURE_TOLERANCE_S <= wall - mtime < min_age_s:
                young.append(path)
            else:
                ready.append((mtime, entry.name, path))
    ready.sort()
    return [path for _, _, path in ready], sorted(young)


def _target_dir(path: Path, name: str) -> Path:
    target = path.parent / name
    target.mkdir(mode=0o700, exist_ok=True)
    return target


def _move_unique(path: Path, directory: Path) -> Path:
    """Move ``path`` into ``directory`` under a safe name no other file there has."""
    base = _disk_name(path.name)[:MAX_NAME_LENGTH - 8]
    for attempt in range(1000):
        target = directory / (base if attempt == 0 else f"{base}.{attempt}")
        try:
            os.link(path, target, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError:
            if target.exists() or target.is_symlink():
                continue
            os.rename(path, target)  # no hard links here: rename to a free name
            return target
        os.unlink(path)
        return target
    raise OSError(f"no free name for {path.name} in {directory}")


def move_to_processed(path: Path) -> Path:
    """Move a handled file to ``processed/``; returns where it went."""
    return _move_unique(path, _target_dir(path, PROCESSED_DIR))


def quarantine(path: Path, reason: str) -> Path:
    """Move a bad file to ``quarantine/`` and write ``<name>.reason`` (mode 0600) beside it.

    Raises :class:`QuarantineNoteError` when the file moved but its note could not be
    written; the partial note is removed, so a note present is a note complete.
    """
    target = _move_unique(path, _target_dir(path, QUARANTINE_DIR))
    note = target.with_name(target.name + ".reason")
    text = " ".join(reason.splitlines()) + "\n"
    try:
        fd = os.open(note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                     | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
    except OSError as exc:
        with contextlib.suppress(OSError):
            note.unlink()
        raise QuarantineNoteError(target, exc) from exc
    return target
