"""Starting AGI sessions the way res_agi.c does: FastAGI over TCP (``agi://host[:port]/script``)
or a classic agi-bin script run as a child process (commands on its stdout, replies on stdin).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet import error as twisted_error
from twisted.internet import protocol
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    connectProtocol,
)

from sim.agi.env import env_block
from sim.agi.session import FAILURE, HANGUP, NOTFOUND, SUCCESS, AgiRecord, AgiSession

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.interpreter import Runner
    from sim.pbx import Pbx

log = logging.getLogger(__name__)

AGI_PORT = 4573
STDERR_LIMIT = 65536


class AgiUrlError(ValueError):
    """The agi:// URL cannot be used."""


def parse_agi_url(url: str) -> tuple[str, int, str]:
    """``agi://host[:port][/script]`` -> (host, port, script after the first ``/``)."""
    rest = url[6:]
    host, _, script = rest.partition("/")
    port = AGI_PORT
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise AgiUrlError(f"bad IPv6 address in {url!r}")
        addr, tail = host[1:end], host[end + 1 :]
        if tail.startswith(":"):
            port = _port(tail[1:], url)
        host = addr
    elif host.count(":") == 1:
        host, port_s = host.split(":")
        port = _port(port_s, url)
    if not host:
        raise AgiUrlError(f"no host in {url!r}")
    return host, port, script


def _port(text: str, url: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise AgiUrlError(f"bad port in {url!r}")
    return int(text)


class _TcpLink(protocol.Protocol):
    """Feeds the session; implements the session's Transport."""

    def __init__(self) -> None:
        self.session: AgiSession | None = None
        self.pending = b""
        self.closed = False
        self.lost: Deferred = Deferred()

    def attach(self, session: AgiSession) -> None:
        self.session = session
        if self.pending:
            session.data_received(self.pending)
            self.pending = b""
        if self.closed:
            session.connection_lost()

    def dataReceived(self, data: bytes) -> None:
        if self.session is None:
            self.pending += data
        else:
            self.session.data_received(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.closed = True
        if self.session is not None:
            self.session.connection_lost()
        if not self.lost.called:
            self.lost.callback(None)

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.transport.loseConnection()

    def signal_hangup(self) -> None:
        self.write(b"HANGUP\n")


def _endpoint(reactor: Any, host: str, port: int, timeout: float) -> Any:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return HostnameEndpoint(reactor, host.encode("idna"), port, timeout=timeout)
    cls = TCP6ClientEndpoint if addr.version == 6 else TCP4ClientEndpoint
    return cls(reactor, host, port, timeout=timeout)


async def run_fastagi(
    pbx: Pbx, chan: Channel, runner: Runner, url: str, args: list[str], record: AgiRecord
) -> str:
    try:
        host, port, script = parse_agi_url(url)
    except AgiUrlError as exc:
        log.warning("%s", exc)
        return FAILURE
    reactor = pbx.clock.reactor
    endpoint = _endpoint(reactor, host, port, pbx.settings.agi_connect_timeout)
    try:
        link: _TcpLink = await connectProtocol(endpoint, _TcpLink())
    except (twisted_error.ConnectError, twisted_error.DNSLookupError, OSError) as exc:
        log.warning("FastAGI connection to '%s' failed: %s", url, exc)
        return FAILURE
    except Exception as exc:  # timeouts and cancellations come in many types
        log.warning("FastAGI connection to '%s' failed: %r", url, exc)
        return FAILURE
    session = AgiSession(pbx, chan, runner, link, record, pbx.settings.agi_idle_timeout)
    link.attach(session)
    env = env_block(chan, url, args, network_script=script, thread_id=pbx.thread_id(chan))
    return await session.run(env)


class _ProcessLink(protocol.ProcessProtocol):
    """A classic AGI script: stdin gets the environment and replies, stdout has commands."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.session: AgiSession | None = None
        self.ended: Deferred = Deferred()
        self.exit_code: int | None = None
        self.stderr_seen = 0
        self.running = True
        self.out_closed = False

    def outReceived(self, data: bytes) -> None:
        if self.session is not None:
            self.session.data_received(data)

    def errReceived(self, data: bytes) -> None:
        if self.stderr_seen < STDERR_LIMIT:
            self.stderr_seen += len(data)
            text = data.decode("utf-8", errors="replace").rstrip()
            log.info("AGI script %s stderr: %s", self.name, text[:2000])

    def outConnectionLost(self) -> None:
        self.out_closed = True
        if self.session is not None:
            self.session.connection_lost()

    def processEnded(self, reason: Any) -> None:
        self.running = False
        code = getattr(reason.value, "exitCode", None)
        self.exit_code = code if code is not None else 1
        if not self.out_closed:
            self.outConnectionLost()
        if not self.ended.called:
            self.ended.callback(self.exit_code)

    def write(self, data: bytes) -> None:
        if self.running and self.transport is not None:
            try:
                self.transport.write(data)
            except Exception as exc:
                log.info("AGI script %s: write failed: %s", self.name, exc)

    def close(self) -> None:
        if self.running and self.transport is not None:
            self.transport.closeStdin()

    def signal_hangup(self) -> None:
        if self.running and self.transport is not None:
            try:
                self.transport.signalProcess("HUP")
            except Exception as exc:
                log.info("AGI script %s: SIGHUP failed: %s", self.name, exc)

    def kill(self) -> None:
        if self.running and self.transport is not None:
            try:
                self.transport.signalProcess("KILL")
            except Exception:
                log.info("AGI script %s already gone", self.name)


def script_env(pbx: Pbx) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "HOME", "TMPDIR")}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, os.environ.get("PATH", "/usr/bin:/bin")])
    agi_dir = str(pbx.settings.agi_dir)
    env.update({"AST_AGI_DIR": agi_dir, "AST_CONFIG_DIR": agi_dir, "AST_VAR_DIR": agi_dir,
                "AST_SPOOL_DIR": agi_dir, "AST_LOG_DIR": agi_dir, "AST_RUN_DIR": agi_dir,
                "AST_DATA_DIR": agi_dir, "AST_KEY_DIR": agi_dir, "AST_MODULE_DIR": agi_dir,
                "AST_MONITOR_DIR": agi_dir, "AST_CONFIG_FILE": "asterisk.conf"})
    return env


async def run_script(
    pbx: Pbx, chan: Channel, runner: Runner, script: str, args: list[str], record: AgiRecord,
    enhanced: bool = False,
) -> str:
    path = Path(script) if script.startswith("/") else pbx.settings.agi_dir / script
    if not path.exists():
        log.warning("Failed to execute '%s': File does not exist.", path)
        return NOTFOUND
    if not os.access(path, os.X_OK) or path.is_dir():
        log.warning("Failed to execute '%s': not an executable file", path)
        return FAILURE
    reactor = pbx.clock.reactor
    link = _ProcessLink(script)
    fds: dict[int, str] = {0: "w", 1: "r", 2: "r"}
    if enhanced:
        fds[3] = "w"
    try:
        reactor.spawnProcess(link, str(path), [str(path), *args], env=script_env(pbx),
                             path=str(pbx.settings.agi_dir), childFDs=fds)
    except OSError as exc:
        log.warning("Failed to execute '%s': %s", path, exc)
        return FAILURE
    pbx.stats["agi_processes"] += 1
    session = AgiSession(pbx, chan, runner, link, record, pbx.settings.agi_idle_timeout)
    link.session = session
    env = env_block(chan, script, args, enhanced=enhanced, thread_id=pbx.thread_id(chan))
    status = await session.run(env)
    if link.running:
        timer = reactor.callLater(pbx.settings.agi_idle_timeout, link.kill)
        await link.ended
        if timer.active():
            timer.cancel()
    if status == SUCCESS and link.exit_code:
        status = FAILURE
    return status


async def run_agi(
    pbx: Pbx, chan: Channel, runner: Runner, script: str, args: list[str], enhanced: bool
) -> tuple[str, AgiRecord]:
    record = AgiRecord(script=script)
    if chan.record is not None:
        chan.record.agi.append(record)
    pbx.stats["agi_sessions"] += 1
    lowered = script.lower()
    if lowered.startswith("hagi://"):
        host = script[7:].partition("/")[0]
        if ":" in host:
            log.warning("Specifying a port number disables SRV lookups: %s", script)
            script, lowered = script[1:], lowered[1:]
        else:
            log.warning("hagi:// needs DNS SRV records, which the simulator does not resolve")
            record.status = FAILURE
            return FAILURE, record
    if lowered.startswith("agi://"):
        status = FAILURE if enhanced else await run_fastagi(pbx, chan, runner, script, args,
                                                            record)
    elif lowered.startswith("agi:async"):
        log.warning("AsyncAGI is not supported by the simulator")
        status = FAILURE
    else:
        status = await run_script(pbx, chan, runner, script, args, record, enhanced)
    record.status = status
    return status, record


__all__ = ["FAILURE", "HANGUP", "NOTFOUND", "SUCCESS", "parse_agi_url", "run_agi"]
