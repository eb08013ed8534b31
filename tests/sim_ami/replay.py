"""Replaying the client side of an AMI trace and comparing the server's lines."""

from __future__ import annotations

import asyncio
import hashlib
import re

from tests.traces import TraceLine

BANNER = "Asterisk Call Manager/11.0.0\r"
# Values that differ on every run by nature.
VARIABLE = {"Timestamp", "Challenge", "SessionID", "EventTV", "SessionTV", "Uptime",
            "LastReload"}
_ADDRESS = re.compile(r"^(IPV4/TCP/127\.0\.0\.1)/\d+")
_UNIQUEID = re.compile(r"^\d+\.\d+$")
_CHANNEL_SEQ = re.compile(r"-[0-9a-f]{8};")


def normalize(line: str) -> str:
    """Blank out the inherently variable part of one ``Name: value`` line."""
    name, sep, value = line.partition(": ")
    if not sep:
        return line
    if name in VARIABLE:
        return f"{name}: <variable>"
    if name in ("LocalAddress", "RemoteAddress"):
        return f"{name}: " + _ADDRESS.sub(r"\1/<port>", value)
    if name.endswith(("Uniqueid", "Linkedid")) and _UNIQUEID.match(value.rstrip("\r")):
        return f"{name}: <uniqueid>\r"
    return f"{name}: " + _CHANNEL_SEQ.sub("-<seq>;", value)


def connections(trace: list[TraceLine]) -> list[list[TraceLine]]:
    """Split a trace into its TCP connections (each starts with the banner)."""
    parts: list[list[TraceLine]] = []
    for line in trace:
        if line.side == "S" and line.text == BANNER:
            parts.append([])
        parts[-1].append(line)
    return parts


class Mismatch(AssertionError):
    pass


async def replay_connection(port: int, lines: list[TraceLine], secret: str) -> list[str]:
    """Replay ``lines`` on a new connection, then close it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await replay_on(reader, writer, lines, secret)
    finally:
        writer.close()


async def replay_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    lines: list[TraceLine], secret: str, timeout: float = 5.0) -> list[str]:
    """Send the C lines, check every S line; returns the server lines actually read."""
    got: list[str] = []
    challenge = ""
    pending: list[str] = []
    for line in lines:
        if line.side == "C":
            text = line.text
            if text.startswith("Key: ") and challenge:
                digest = hashlib.md5((challenge + secret).encode()).hexdigest()
                text = f"Key: {digest}\r"
            pending.append(text + "\n")
            continue
        if pending:
            writer.write("".join(pending).encode())
            await writer.drain()
            pending = []
        if line.text == "<eof>":
            rest = await asyncio.wait_for(reader.read(), timeout)
            if rest:
                raise Mismatch(f"expected EOF, got {rest[:200]!r}")
            got.append("<eof>")
            continue
        raw = await asyncio.wait_for(reader.readline(), timeout)
        text = raw.decode("utf-8")
        if not text.endswith("\n"):
            raise Mismatch(f"connection ended; expected {line.text!r}")
        text = text[:-1]
        if text.startswith("Challenge: "):
            challenge = text[len("Challenge: "):].rstrip("\r")
        got.append(text)
        if normalize(text) != normalize(line.text):
            raise Mismatch(f"line {len(got)}: expected {line.text!r}, got {text!r}")
    return got
