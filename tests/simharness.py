"""Run the simulator (``python -m sim serve``) as a subprocess on free loopback ports and talk
its control protocol from asyncio tests.

    async with start_sim(dialplans=[path], sounds=dir, speed=50) as sim:
        result = await sim.call({"number": "13800138000", "script": [...]})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from ivr.demo.simproc import SimControl

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 30.0
REQUEST_TIMEOUT = 60.0
STDERR_KEEP = 200_000


class SimError(RuntimeError):
    """The simulator failed to start or answered a request with an error."""


class SimProcess:
    """A running simulator and one control connection to it."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: dict[str, Any]) -> None:
        self.proc = proc
        self.control_port: int = ready["control_port"]
        self.ami_port: int | None = ready.get("ami_port")
        self.control = SimControl(SimError)
        self._stderr = bytearray()
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self._stderr += chunk
            del self._stderr[:-STDERR_KEEP]

    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", errors="replace")

    async def connect(self) -> None:
        await self.control.connect(self.control_port)

    async def raw(self, request: Mapping[str, Any], timeout: float = REQUEST_TIMEOUT
                  ) -> dict[str, Any]:
        """Send one request (an ``id`` is added) and return the whole response message."""
        return await self.control.raw(request, timeout)

    async def request(self, op: str, timeout: float = REQUEST_TIMEOUT, **fields: Any) -> Any:
        """Send ``op`` and return its result; raise SimError on ``ok: false``."""
        return await self.control.request(op, timeout, **fields)

    async def call(self, caller: Mapping[str, Any], timeout: float = REQUEST_TIMEOUT) -> dict:
        return await self.control.call(caller, timeout)

    async def originate(self, timeout: float = REQUEST_TIMEOUT, **fields: Any) -> dict:
        return await self.request("originate", timeout=timeout, **fields)

    async def close(self) -> int | None:
        with contextlib.suppress(Exception):
            if self.proc.returncode is None:
                await self.raw({"op": "shutdown"}, timeout=5)
        await self.control.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._stderr_task, 5)
        return self.proc.returncode


def sim_command(
    dialplans: Iterable[Path | str],
    sounds: Path | str | None = None,
    globals_: Mapping[str, str] | None = None,
    speed: float = 1.0,
    extra_args: Iterable[str] = (),
) -> list[str]:
    cmd = [sys.executable, "-m", "sim", "serve", "--control-port", "0", "--speed", str(speed)]
    for path in dialplans:
        cmd += ["--dialplans", str(path)]
    if sounds is not None:
        cmd += ["--sounds", str(sounds)]
    for name, value in (globals_ or {}).items():
        cmd += ["--global", f"{name}={value}"]
    return [*cmd, *extra_args]


@contextlib.asynccontextmanager
async def start_sim(
    dialplans: Iterable[Path | str],
    sounds: Path | str | None = None,
    globals_: Mapping[str, str] | None = None,
    speed: float = 1.0,
    extra_args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[SimProcess]:
    """Start the simulator, wait for its ready line, connect; shut it down on exit."""
    cmd = sim_command(dialplans, sounds, globals_, speed, extra_args)
    proc = await asyncio.create_subprocess_exec(
        *cmd, cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    assert proc.stdout is not None
    line = b""
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT)
        ready = json.loads(line) if line.startswith(b"{") else {}
    except (TimeoutError, json.JSONDecodeError):
        ready = {}
    if not ready.get("ready"):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        _out, err = await proc.communicate()
        raise SimError(f"simulator did not start: {line!r}\n{err.decode(errors='replace')}")
    sim = SimProcess(proc, ready)
    try:
        await sim.connect()
        yield sim
    finally:
        await sim.close()
