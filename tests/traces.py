"""Reading of the byte-exact Asterisk 22.10.1 transcripts in tests/data/asterisk-traces/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TRACES_DIR = Path(__file__).resolve().parent / "data" / "asterisk-traces"


@dataclass(frozen=True)
class TraceLine:
    side: str  # "S" (Asterisk) or "C" (client)
    text: str  # with "\r" restored where the transcript marks it


def read_trace(name: str) -> list[TraceLine]:
    lines = []
    for raw in (TRACES_DIR / name).read_text(encoding="utf-8").splitlines():
        side, _, text = raw.partition(": ")
        if raw in ("S:", "C:"):
            side, text = raw[0], ""
        lines.append(TraceLine(side, text.replace("\\r", "\r")))
    return lines


def split_agi_trace(name: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Environment lines, then (client command, Asterisk reply lines) pairs."""
    lines = read_trace(name)
    env: list[str] = []
    index = 0
    while lines[index].text != "":
        env.append(lines[index].text)
        index += 1
    exchanges: list[tuple[str, list[str]]] = []
    for line in lines[index + 1 :]:
        if line.side == "C":
            exchanges.append((line.text, []))
        elif not line.text.startswith("<"):
            exchanges[-1][1].append(line.text)
    return env, exchanges


def agi_words(line: str) -> list[str]:
    """Split an AGI command as Asterisk's parser does: spaces, double quotes, backslash escapes."""
    words: list[str] = []
    current: list[str] = []
    quoted = escaped = started = False
    for ch in line:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted, started = not quoted, True
        elif ch in " \t" and not quoted:
            if current or started:
                words.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
    if current or started:
        words.append("".join(current))
    return words
