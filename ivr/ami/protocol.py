"""One AMI connection on asyncio: framing, action/reply matching and event delivery.

The engine owns this protocol outright (see the README, *Libraries*):

- bytes are decoded with one incremental UTF-8 decoder for the whole stream, so a character
  split across two TCP reads survives;
- a message ends at an empty line; a header with an empty value (``Value: `` of an unset
  variable) is kept; a line without ``": "`` is command output (``Output``);
- every outgoing header is checked (no CR, LF or NUL, Asterisk's line and header limits)
  before anything is written, and an ``Originate`` always carries an explicit ``Async``;
- replies are matched to their action by ``ActionID``: one response, an event list
  (``EventList: start`` ... ``EventList: Complete``), or for an asynchronous Originate the
  response and then its ``OriginateResponse`` event;
- actions still waiting when the link drops fail with AmiConnectionLost (AmiOriginateLost
  for an Originate) and are never sent again;
- the banner is checked and waited for; buffered input is bounded.
"""

from __future__ import annotations

import asyncio
import codecs
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ivr.logmask import masked_logger

from .errors import AmiConnectionLost, AmiNotSent, AmiOriginateLost, AmiProtocolError
from .headers import HeaderValue, header_lines
from .messages import AmiMessage, AmiResponse

BANNER_PREFIX = "Asterisk Call Manager/"
MAX_BANNER_CHARS = 1024
MAX_PENDING_CHARS = 1 << 20  # one unterminated message may not exceed 1 MiB
EOL = "\r\n"
_TRUE = {"1", "y", "yes", "t", "true", "on"}
_ids = itertools.count(1)

Reply = AmiResponse | list[AmiMessage]
EventSink = Callable[[AmiMessage], None]


@dataclass
class PendingAction:
    """An action sent and not yet fully answered."""

    action_id: str
    name: str
    asynchronous: bool  # an Originate with Async: its OriginateResponse completes it
    future: asyncio.Future[Reply]
    messages: list[AmiMessage] = field(default_factory=list)

    def add(self, message: AmiMessage) -> bool:
        """Take one reply message; True once the action is complete."""
        self.messages.append(message)
        first = self.messages[0]
        if not isinstance(first, AmiResponse):  # an event before the response: keep it
            return False
        if len(self.messages) == 1:
            if self.asynchronous and first.success:
                return False  # the OriginateResponse event follows
            if first.get("EventList").lower() == "start":
                return False  # the list's items and its Complete event follow
            self.future.set_result(first)
            return True
        if self.asynchronous:
            if message.event == "OriginateResponse":
                self.future.set_result(list(self.messages))
                return True
            return False
        if message.get("EventList").lower() == "complete" or message.event.endswith("Complete"):
            self.future.set_result(list(self.messages))
            return True
        return False

    def lost_error(self) -> AmiConnectionLost:
        if self.name.lower() == "originate":
            return AmiOriginateLost(
                f"AMI link dropped after Originate {self.action_id} was sent; its outcome is "
                "unknown and it was not re-sent", self.action_id
            )
        return AmiConnectionLost(f"AMI link dropped before {self.name} {self.action_id} "
                                 "completed")


def parse_message(block: str) -> AmiMessage | None:
    """One message (the text between empty lines); None if it is neither event nor reply."""
    pairs: list[tuple[str, str]] = []
    for line in block.split(EOL):
        name, sep, value = line.partition(": ")
        if not sep:
            name, sep, value = line.partition(":")  # "Value:" with nothing after it
            if not sep or not name or " " in name:
                if line:
                    pairs.append(("Output", line))  # a command's output line
                continue
        pairs.append((name, value))
    names = {name.lower() for name, _ in pairs}
    if "event" in names:
        return AmiMessage(pairs)
    if "response" in names:
        return AmiResponse(pairs)
    return None


class AmiProtocol(asyncio.Protocol):
    """One AMI connection (the engine is the client)."""

    def __init__(self, on_event: EventSink, id_prefix: str = "ivr") -> None:
        self._on_event = on_event
        self._id_prefix = id_prefix
        self.log: logging.Logger = masked_logger("ivr.ami.wire")
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._head = ""
        self._buffer = ""
        self._pending: dict[str, PendingAction] = {}
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.version = ""
        loop = asyncio.get_running_loop()
        self.banner: asyncio.Future[str] = loop.create_future()
        # a link lost before its banner, after the connect gave up waiting, is not an error
        # for asyncio to report at collection: its failure was the connect's to report
        self.banner.add_done_callback(_consume)
        self.lost: asyncio.Future[Exception | None] = loop.create_future()
        self.received = 0  # chunks read so far: a link still delivering is not half-open

    # ---- input -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.received += 1
        text = self._decoder.decode(data)
        if not self.banner.done():
            text = self._take_banner(text)
            if not text:
                return
        *complete, self._buffer = (self._buffer + text).split(EOL + EOL)
        for block in complete:
            message = parse_message(block.strip("\r\n"))
            if message is not None:
                self._handle(message)
        if len(self._buffer) > MAX_PENDING_CHARS:
            self._fail(AmiProtocolError(f"AMI message exceeds {MAX_PENDING_CHARS} characters"))

    def _take_banner(self, text: str) -> str:
        self._head += text
        line, newline, rest = self._head.partition("\n")
        if not newline:
            if len(self._head) > MAX_BANNER_CHARS:
                self._fail(AmiProtocolError("no AMI banner line within 1024 characters"))
            return ""
        line = line.rstrip("\r")
        if not line.startswith(BANNER_PREFIX):
            self._fail(AmiProtocolError(f"not an Asterisk manager banner: {line[:80]!r}"))
            return ""
        self.version = line[len(BANNER_PREFIX):].strip()
        self.banner.set_result(self.version)
        self._head = ""
        return rest

    def _handle(self, message: AmiMessage) -> None:
        pending = self._pending.get(message.action_id) if message.action_id else None
        if pending is not None:
            if pending.future.done() or pending.add(message):
                self._pending.pop(pending.action_id, None)
            return
        if message.event:
            if message.event.lower() == "shutdown":
                self.log.warning("Asterisk is shutting down")
            self._on_event(message)

    def _fail(self, error: Exception) -> None:
        self.log.error("closing AMI link: %s", error)
        if not self.banner.done():
            self.banner.set_exception(error)
        if self.transport is not None:
            self.transport.abort()

    # ---- output ------------------------------------------------------------
    def send(self, fields: Mapping[str, HeaderValue]) -> asyncio.Future[Reply]:
        """Write one action; the future resolves with its reply (see PendingAction).

        Raises ValueError for an unsafe header (nothing is written), AmiConnectionLost if the
        link is down.
        """
        headers = dict(fields)
        name = str(headers.get("Action", ""))
        action_id = str(headers.get("ActionID") or f"{self._id_prefix}-{next(_ids)}")
        headers["ActionID"] = action_id
        asynchronous = False
        if name.lower() == "originate":
            headers["Async"] = _explicit_async(headers.get("Async"))
            asynchronous = headers["Async"] == "true"
        lines = header_lines(headers)  # raises ValueError before anything is registered
        if action_id in self._pending:
            raise ValueError(f"ActionID {action_id!r} is already waiting for a reply")
        if self.closed or self.transport is None or self.transport.is_closing():
            raise AmiNotSent("AMI link is not connected")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = PendingAction(action_id, name, asynchronous, future)
        self.transport.write("".join(f"{k}: {v}{EOL}" for k, v in lines).encode() + b"\r\n")
        return future

    def forget(self, future: asyncio.Future[Any]) -> bool:
        """Drop a timed-out action so that a late reply cannot be taken for another's; True
        if Asterisk had answered it at all (an Originate "queued", say)."""
        answered = False
        for action_id, pending in list(self._pending.items()):
            if pending.future is future:
                answered = answered or bool(pending.messages)
                del self._pending[action_id]
        future.cancel()
        return answered

    # ---- teardown ----------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_pending()
        self.closed = True
        if not self.banner.done():
            self.banner.set_exception(AmiConnectionLost("AMI link closed before the banner"))
        if not self.lost.done():
            self.lost.set_result(exc)

    def close(self) -> None:
        """Fail every action still waiting (never replay it) and close the transport."""
        self._fail_pending()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for action in pending.values():
            if not action.future.done():
                action.future.set_exception(action.lost_error())


def _explicit_async(value: object) -> str:
    """Async as exactly 'true' or 'false' (absent means false, Asterisk's default)."""
    return "true" if str(value or "").strip().lower() in _TRUE else "false"


def _consume(future: asyncio.Future[str]) -> None:
    """Mark a finished future's exception as retrieved."""
    if not future.cancelled():
        future.exception()
