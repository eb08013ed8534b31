"""One FastAGI session: send commands, read replies, survive HANGUP lines, 511 and 520 blocks."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

from ivr.agi.command import command_line
from ivr.agi.environment import AgiEnvironment
from ivr.agi.errors import AgiCommandError, AgiHangup, AgiProtocolError
from ivr.agi.reply import AgiReply, parse_200
from ivr.metrics import AGI_COMMAND_SECONDS

log = logging.getLogger(__name__)

MAX_USAGE_LINES = 64


class Playback(NamedTuple):
    """Outcome of STREAM FILE: the digit that interrupted it, if any."""

    digit: str | None
    endpos: int
    missing: bool


class DigitInput(NamedTuple):
    """Outcome of GET DATA: the digits typed and whether input ended by timeout."""

    digits: str
    timed_out: bool


class _ReplyOverdue(Exception):
    """No reply within the session's reply time-out (fed to the reader by its timer)."""


class AgiSession:
    """Commands on one channel. Every reply read is bounded in time; a HANGUP line never desyncs.

    The bound is one timer per session, not one per command: a command only moves the
    session's deadline, and the timer, when it fires early, sleeps on to the deadline (a
    call sends a command every few hundred milliseconds; its replies rarely take long)."""

    def __init__(
        self,
        env: AgiEnvironment,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        reply_timeout_s: float,
    ) -> None:
        self.env = env
        self._reader = reader
        self._writer = writer
        self._reply_timeout_s = reply_timeout_s
        self.hungup = False
        self.commands_sent = 0
        self._deadline: float | None = None  # loop time a reply is due by, while one is awaited
        self._timer: asyncio.TimerHandle | None = None

    # -- raw protocol -------------------------------------------------------------------------

    async def command(self, verb: str, *args: str | int) -> AgiReply:
        """Send one command and return its 200 reply; raise on 510/520/511 or a dead link."""
        line = command_line(verb, *args)
        writer = self._writer
        try:
            writer.write(line)
            if writer.transport.get_write_buffer_size():  # else nothing to wait for
                await writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self.hungup = True
            raise AgiHangup(f"connection lost sending {verb}") from exc
        self.commands_sent += 1
        sent = time.perf_counter()
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + self._reply_timeout_s
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._on_timer)
        try:
            reply = await self._read_reply()
        except _ReplyOverdue:
            raise AgiProtocolError(
                f"no reply to {verb} within {self._reply_timeout_s:g} s"
            ) from None
        finally:
            self._deadline = None
        AGI_COMMAND_SECONDS.labels(verb).observe(time.perf_counter() - sent)
        return reply

    def _on_timer(self) -> None:
        """The reply awaited is overdue: the read fails (the session is over). Else sleep on
        to the current deadline, if a reply is awaited."""
        self._timer = None
        deadline = self._deadline
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= deadline:
            self._reader.set_exception(_ReplyOverdue())
        else:
            self._timer = loop.call_at(deadline, self._on_timer)

    async def _readline(self) -> str:
        try:
            raw = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            self.hungup = True
            raise AgiHangup("connection closed by Asterisk") from exc
        except asyncio.LimitOverrunError as exc:
            raise AgiProtocolError("AGI reply line too long") from exc
        except ConnectionError as exc:
            self.hungup = True
            raise AgiHangup("connection reset by Asterisk") from exc
        return raw.decode("utf-8", errors="replace").rstrip("\n").removesuffix("\r")

    async def _read_reply(self) -> AgiReply:
        while True:
            line = await self._readline()
            code = line[:3]
            if code == "200":  # first: nearly every reply
                return parse_200(line)
            if line == "HANGUP":
                self.hungup = True
                continue
            if code == "100":  # "100 Trying", sent by older Asterisk versions
                continue
            if code == "511":
                self.hungup = True
                raise AgiHangup(line)
            if code == "510":
                raise AgiCommandError(510, line[4:])
            if line.startswith("520-"):
                raise AgiCommandError(520, await self._read_usage(line))
            if code == "520":
                raise AgiCommandError(520, line[4:])
            raise AgiProtocolError(f"unexpected AGI reply line: {line[:120]!r}")

    async def _read_usage(self, first: str) -> str:
        text = [first[4:]]
        for _ in range(MAX_USAGE_LINES):
            line = await self._readline()
            if line.startswith("520 "):
                return "\n".join(text)
            text.append(line)
        raise AgiProtocolError("520 usage block did not end")

    def _check_alive(self, reply: AgiReply, verb: str) -> AgiReply:
        if reply.result == "-1" and (self.hungup or verb != "STREAM FILE"):
            self.hungup = True
            raise AgiHangup(f"{verb} returned -1")
        return reply

    # -- commands the call flows use --------------------------------------------------------

    async def answer(self) -> None:
        self._check_alive(await self.command("ANSWER"), "ANSWER")

    async def hangup(self) -> None:
        await self.command("HANGUP")
        self.hungup = True

    def release(self) -> None:
        """End the session for Asterisk now (it closes the socket: AGI returns and the
        dialplan goes on) while the flow finishes its own bookkeeping; no command after."""
        self._writer.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def stream_file(self, prompt: str, escape_digits: str = "") -> Playback:
        """Play a prompt; a missing prompt is reported (result -1, endpos 0), not fatal."""
        reply = self._check_alive(
            await self.command("STREAM FILE", prompt, escape_digits), "STREAM FILE"
        )
        if reply.result == "-1":
            # -1 is both "no such prompt" and "hung up while playing": ask the channel.
            await self.command("CHANNEL STATUS")
            log.error("prompt missing on the PBX: %s", prompt)
            return Playback(digit=None, endpos=0, missing=True)
        value = reply.value or 0
        return Playback(digit=chr(value) if value > 0 else None, endpos=reply.endpos or 0,
                        missing=False)

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> DigitInput:
        reply = self._check_alive(
            await self.command("GET DATA", prompt, timeout_ms, max_digits), "GET DATA"
        )
        return DigitInput(digits=reply.result, timed_out=reply.timed_out)

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        verb = "WAIT FOR DIGIT"
        reply = self._check_alive(await self.command(verb, timeout_ms), verb)
        value = reply.value or 0
        return chr(value) if value > 0 else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command("SET VARIABLE", name, value)

    async def get_variable(self, name: str) -> str | None:
        reply = await self.command("GET VARIABLE", name)
        return reply.data if reply.result == "1" else None

    async def get_full_variable(self, expression: str) -> str | None:
        reply = await self.command("GET FULL VARIABLE", expression)
        return reply.data if reply.result == "1" else None

    async def exec(self, application: str, *args: str) -> int:
        """Run a dialplan application; -2 means the application does not exist."""
        reply = await self.command("EXEC", application, ",".join(args))
        return reply.value if reply.value is not None else -1

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command("VERBOSE", message, level)
