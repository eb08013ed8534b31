"""panoramisk's AMIProtocol with its wire-level defects fixed.

- bytes are decoded with one incremental UTF-8 decoder for the whole stream, so a
  character split across two TCP reads survives (panoramisk decoded each read on
  its own and dropped the pieces);
- every outgoing header is checked (no CR, LF or NUL) before anything is written;
- an ``Originate`` always carries an explicit ``Async`` (panoramisk raised KeyError
  inside ``data_received`` without it, killing the link);
- actions still waiting when the link drops fail with AmiConnectionLost
  (AmiOriginateLost for Originate) instead of being queued for replay;
- a header with an empty value at the end of a message (``Value: `` of an unset
  variable in a Getvar reply) is kept (panoramisk stripped it away);
- the banner is checked and waited for; buffered input is bounded.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from typing import Any

from panoramisk import actions, utils
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from ivr.logmask import masked_logger

from .errors import AmiConnectionLost, AmiNotSent, AmiOriginateLost, AmiProtocolError
from .headers import header_lines

BANNER_PREFIX = "Asterisk Call Manager/"
MAX_BANNER_CHARS = 1024
MAX_PENDING_CHARS = 1 << 20  # one unterminated message may not exceed 1 MiB
_TRUE = {"1", "y", "yes", "t", "true", "on"}


class HardenedAMIProtocol(AMIProtocol):
    """One AMI connection (the engine is the client)."""

    encoding = "utf-8"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        loop = asyncio.get_running_loop()
        self.log: logging.Logger = masked_logger("ivr.ami.wire")
        self.encoding = "utf-8"
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._head = ""
        self.banner: asyncio.Future[str] = loop.create_future()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()

    # ---- input -------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if not self.banner.done():
            text = self._take_banner(text)
            if not text:
                return
        pending = (self.queue.popleft() if self.queue else "") + text
        *complete, rest = pending.split(utils.EOL + utils.EOL)
        self.queue.append(rest)
        for block in complete:
            # Only line breaks are trimmed: a trailing "Value: " must keep its space.
            message = Message.from_line(block.strip("\r\n"))
            if message is not None:
                self.handle_message(message)
        if len(rest) > MAX_PENDING_CHARS:
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

    def _fail(self, error: Exception) -> None:
        self.log.error("closing AMI link: %s", error)
        if not self.banner.done():
            self.banner.set_exception(error)
        self.transport.abort()

    def handle_message(self, message: Message) -> None:
        try:
            super().handle_message(message)
        except Exception as exc:  # a parser corner case must not kill the link
            self.log.exception("AMI message could not be handled: %r", message)
            action = self.responses.pop(message.id, None) if message.id else None
            if action is not None and not action.future.done():
                action.future.set_exception(AmiProtocolError(f"bad reply to {action.id}: {exc}"))

    # ---- output ------------------------------------------------------------
    def send(self, data: Any, as_list: bool | None = None) -> asyncio.Future[Any]:
        action = data if isinstance(data, actions.Action) else actions.Action(dict(data))
        if str(action.get("Action", "")).lower() == "originate":
            action["Async"] = _explicit_async(action.get("Async"))
        header_lines(dict(action.items()))  # raises ValueError before anything is registered
        if self.closed or self.transport.is_closing():
            raise AmiNotSent("AMI link is not connected")
        return super().send(action, as_list=as_list)

    # ---- teardown ----------------------------------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.close()
            if self.factory is not None:
                self.factory.connection_lost(exc)
        if not self.banner.done():
            self.banner.set_exception(AmiConnectionLost("AMI link closed before the banner"))
        if not self.lost.done():
            self.lost.set_result(exc)

    def close(self) -> None:
        """Fail every action still waiting (never replay it) and close the transport."""
        pending = {id(action): action for action in self.responses.values()}
        self.responses.clear()
        for action in pending.values():
            if not action.future.done():
                action.future.set_exception(_lost_error(action))
        if not self.closed:
            self.closed = True
            self.transport.close()


def _explicit_async(value: object) -> str:
    """Async as exactly 'true' or 'false' (absent means false, Asterisk's default)."""
    return "true" if str(value or "").strip().lower() in _TRUE else "false"


def _lost_error(action: actions.Action) -> AmiConnectionLost:
    if str(action.get("Action", "")).lower() == "originate":
        return AmiOriginateLost(
            f"AMI link dropped after Originate {action.id} was sent; its outcome is unknown "
            "and it was not re-sent", str(action.id)
        )
    name = action.get("Action")
    return AmiConnectionLost(f"AMI link dropped before {name} {action.id} completed")
