"""Splitting the client's byte stream into AMI requests, as Asterisk's get_input() does.

Lines end in CR LF or a bare LF. A line must fit in Asterisk's 1024-byte input
buffer: otherwise the buffer is discarded (all but its last byte) and the whole
message is answered with a parse error. At most 128 lines per message; a NUL ends
a line's text. Bytes that are not UTF-8 are replaced, never fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BUFFER_BYTES = 1024
MAX_HEADERS = 128


@dataclass
class Request:
    """One client message: its raw header lines, in order."""

    lines: list[str] = field(default_factory=list)
    error: str | None = None  # a parse error Asterisk reports instead of running it

    def get(self, name: str) -> str:
        """astman_get_header(): first ``name:`` line, case-insensitive, blanks skipped."""
        return next(iter(self._values(name)), "")

    def get_nonempty(self, name: str) -> str:
        return next((value for value in self._values(name) if value), "")

    def get_all(self, name: str) -> list[str]:
        return list(self._values(name))

    def _values(self, name: str) -> list[str]:
        prefix = name.lower() + ":"
        return [
            _skip_blanks(line[len(prefix):])
            for line in self.lines
            if line[: len(prefix)].lower() == prefix
        ]


def _skip_blanks(text: str) -> str:
    index = 0
    while index < len(text) and ord(text[index]) < 33:
        index += 1
    return text[index:]


class RequestReader:
    """Incremental parser: ``feed(bytes)`` returns the requests completed so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._current = Request()
        self._too_long = False
        self._lost_lines = False

    def feed(self, data: bytes) -> list[Request]:
        self._buffer += data
        done: list[Request] = []
        while True:
            end = self._buffer.find(b"\n", 0, BUFFER_BYTES)
            if end < 0:
                if len(self._buffer) >= BUFFER_BYTES:
                    # Line too long: keep the last byte of the full buffer, as Asterisk does.
                    del self._buffer[: BUFFER_BYTES - 1]
                    self._too_long = True
                    continue
                return done
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            request = self._line(raw.split(b"\0", 1)[0].decode("utf-8", errors="replace"))
            if request is not None:
                done.append(request)

    def _line(self, text: str) -> Request | None:
        if text:
            if len(self._current.lines) < MAX_HEADERS:
                self._current.lines.append(text)
            else:
                self._lost_lines = True
            return None
        request = self._current
        if self._lost_lines:
            request.error = "Too many lines in message or allocation failure"
        elif self._too_long:
            request.error = "Failed to parse message: line too long"
        self._current = Request()
        self._too_long = self._lost_lines = False
        return request
