"""Real processes for crash tests: engine processes and a private Redis server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@contextlib.contextmanager
def engines(stop_timeout_s: float = 30.0) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Engine processes started in the block; whatever is still running is stopped after
    (SIGTERM, then SIGKILL after ``stop_timeout_s``)."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        stop_engines(started, stop_timeout_s)


def stop_engines(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM to every one still running, then SIGKILL to those not gone after
    ``timeout_s``. Blocking: from an event loop that relays their traffic (a TCP proxy in
    the test's process), call it in a thread."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def listening(port: int, process: subprocess.Popen[bytes] | None = None,
                    timeout_s: float = 30.0) -> None:
    """Until something accepts connections on the loopback ``port`` (fails after
    ``timeout_s``, or as soon as ``process`` has exited)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if loop.time() > deadline or (process is not None and process.poll() is not None):
                raise
            await asyncio.sleep(0.05)


def engine_process(env: dict[str, str], agi_port: int, log: Path) -> subprocess.Popen[bytes]:
    """``hotline engine`` configured by ``env``, serving FastAGI on ``agi_port``."""
    return subprocess.Popen([sys.executable, "-m", "ivr.cli", "engine"],
                            env={**env, "HOTLINE_AGI__PORT": str(agi_port)},
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


class RedisServer:
    """A private redis-server on a fixed loopback port that a test may kill and restart
    (``args``: more of its command-line options, e.g. ``--replicaof``)."""

    def __init__(self, port: int, folder: Path, *args: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary, self.port, self.folder, self.args = binary, port, folder, args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        await listening(self.port, self.process, timeout_s=10)

    def kill(self) -> None:
        """SIGKILL: everything Redis held is gone, as after a crash without persistence."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        self.kill()


def engine_env(db_url: str, redis_url: str, sim: Any, folder: Path, speed: float,
               **settings: str) -> dict[str, str]:
    """The environment of an engine process on ``db_url`` and ``redis_url``, dialling
    through the simulator ``sim`` on its clock ``speed``, with its spools in ``folder``,
    plus ``settings`` (HOTLINE_* names without the prefix, e.g. ``DISPATCH__RECONCILE_S``)."""
    return {
        **os.environ,
        "HOTLINE_DATABASE__URL": db_url, "HOTLINE_REDIS__URL": redis_url,
        "HOTLINE_REDIS__KEY_PREFIX": f"e{uuid.uuid4().hex[:8]}:",
        "HOTLINE_AMI__PORT": str(sim.ami_port), "HOTLINE_AMI__SECRET": sim.ami_secret,
        "HOTLINE_CLOCK__SPEED": str(speed), "HOTLINE_SPOOL__DIR": str(folder / "spool"),
        "HOTLINE_ALARMS__SPOOL_DIR": str(folder / "alarms"),
        "HOTLINE_DIAL__RING_TIMEOUT_S": "20", "HOTLINE_DISPATCH__RECONCILE_S": "0.5",
        "HOTLINE_DISPATCH__RANK_REFRESH_S": "1e9",
        **{f"HOTLINE_{name}": value for name, value in settings.items()},
    }
