"""The ``agi_*`` environment block that opens every FastAGI session."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from ivr.agi.errors import AgiHangup, AgiProbe, AgiProtocolError

MAX_HEADER_LINES = 256


@dataclass(frozen=True, slots=True)
class AgiEnvironment:
    """Parsed environment block; ``raw`` keeps every ``agi_*`` key as sent."""

    raw: dict[str, str]
    args: tuple[str, ...] = field(default=())

    def get(self, key: str, default: str = "") -> str:
        return self.raw.get(key, default)

    @property
    def script(self) -> str:
        """Route name: the path of ``agi_network_script`` without its query string."""
        script = self.raw.get("agi_network_script", "")
        return urlsplit(script).path.strip("/")

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.raw.get("agi_network_script", "")).query))

    @property
    def uniqueid(self) -> str:
        return self.raw.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.raw.get("agi_channel", "")

    @property
    def callerid(self) -> str | None:
        value = self.raw.get("agi_callerid", "")
        return None if value in ("", "unknown") else value

    @property
    def calleridname(self) -> str | None:
        value = self.raw.get("agi_calleridname", "")
        return None if value in ("", "unknown") else value

    @property
    def language(self) -> str:
        return self.raw.get("agi_language", "")

    @property
    def extension(self) -> str:
        return self.raw.get("agi_extension", "")


def parse_environment_lines(lines: list[str]) -> AgiEnvironment:
    """Build an environment from decoded header lines (without the terminating blank line)."""
    raw: dict[str, str] = {}
    args: dict[int, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep or not key.startswith("agi_") or " " in key:
            raise AgiProtocolError(f"malformed AGI header line: {line[:80]!r}")
        value = value[1:] if value.startswith(" ") else value
        raw[key] = value
        if key.startswith("agi_arg_"):
            suffix = key.removeprefix("agi_arg_")
            if not suffix.isdigit():
                raise AgiProtocolError(f"malformed AGI argument key: {key[:40]!r}")
            args[int(suffix)] = value
    if "agi_request" not in raw:
        raise AgiProtocolError("AGI header block lacks agi_request")
    ordered = tuple(args[i] for i in sorted(args))
    return AgiEnvironment(raw=raw, args=ordered)


async def read_environment(
    reader: asyncio.StreamReader, *, timeout_s: float, max_bytes: int, whole: bool = False
) -> AgiEnvironment:
    """Read the header block within a time and size bound; a slow or endless peer is cut off.
    ``whole``: the block in one read (where ``max_bytes`` is at least the reader's buffer
    limit, so a block too large is still refused as soon as it overruns)."""
    read = _read_whole_block if whole else _read_environment_lines
    try:
        async with asyncio.timeout(timeout_s):
            return await read(reader, max_bytes)
    except TimeoutError:
        raise AgiProtocolError(f"AGI header block not complete within {timeout_s:g} s") from None


async def _read_whole_block(reader: asyncio.StreamReader, max_bytes: int) -> AgiEnvironment:
    """The block in one read up to its blank line (Asterisk ends every line with LF); a
    block longer than the reader's buffer limit is read line by line."""
    try:
        raw = await reader.readuntil(b"\n\n")
    except asyncio.LimitOverrunError:
        return await _read_environment_lines(reader, max_bytes)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        if not getattr(exc, "partial", b""):
            raise AgiProbe("connection closed before a byte was sent") from exc
        raise AgiHangup("connection closed inside the AGI header block") from exc
    if len(raw) > max_bytes:
        raise AgiProtocolError(f"AGI header block larger than {max_bytes} bytes")
    lines = raw.decode("utf-8", errors="replace").split("\n")[:-2]
    if len(lines) > MAX_HEADER_LINES:
        raise AgiProtocolError(f"AGI header block has more than {MAX_HEADER_LINES} lines")
    return parse_environment_lines([line.removesuffix("\r") for line in lines])


async def _read_environment_lines(reader: asyncio.StreamReader, max_bytes: int
                                  ) -> AgiEnvironment:
    lines: list[str] = []
    total = 0
    while True:
        try:
            raw = await reader.readuntil(b"\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            if total == 0 and not getattr(exc, "partial", b""):
                raise AgiProbe("connection closed before a byte was sent") from exc
            raise AgiHangup("connection closed inside the AGI header block") from exc
        except asyncio.LimitOverrunError as exc:
            raise AgiProtocolError("AGI header line too long") from exc
        total += len(raw)
        if total > max_bytes:
            raise AgiProtocolError(f"AGI header block larger than {max_bytes} bytes")
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        if line.endswith("\r"):
            line = line[:-1]
        if line == "":
            return parse_environment_lines(lines)
        lines.append(line)
        if len(lines) > MAX_HEADER_LINES:
            raise AgiProtocolError(f"AGI header block has more than {MAX_HEADER_LINES} lines")
