"""Run the simulator (``python -m sim serve``) as a subprocess on free loopback ports and talk
its control protocol from asyncio tests.

    async with start_sim(dialplans=[path], sounds=dir, speed=50) as sim:
        result = await sim.call({"number": "13800138000", "script": [...]})
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

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
        self._stderr = bytearray()
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._read_task: asyncio.Task[None] | None = None

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self._stderr += chunk
            del self._stderr[:-STDERR_KEEP]

    def stderr_text(self) -> str:
        return self._stderr.decode("utf-8", errors="replace")

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            "127.0.0.1", self.control_port, limit=16 * 1024 * 1024
        )
        self._read_task = asyncio.create_task(self._read_responses())

    async def _read_responses(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                message = json.loads(line)
                future = self._pending.pop(message.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(message)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(SimError("control connection closed"))

    async def raw(self, request: Mapping[str, Any], timeout: float = REQUEST_TIMEOUT
                  ) -> dict[str, Any]:
        """Send one request (an ``id`` is added) and return the whole response message."""
        assert self._writer is not None, "not connected"
        req_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = future
        payload = {**request, "id": req_id}
        self._writer.write(json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\n")
        await self._writer.drain()
        return await asyncio.wait_for(future, timeout)

    async def request(self, op: str, timeout: float = REQUEST_TIMEOUT, **fields: Any) -> Any:
        """Send ``op`` and return its result; raise SimError on ``ok: false``."""
        message = await self.raw({"op": op, **fields}, timeout)
        if not message.get("ok"):
            raise SimError(message.get("error", "unknown error"))
        return message["result"]

    async def call(self, caller: Mapping[str, Any], timeout: float = REQUEST_TIMEOUT) -> dict:
        return await self.request("call", timeout=timeout, caller=dict(caller))

    async def originate(self, timeout: float = REQUEST_TIMEOUT, **fields: Any) -> dict:
        return await self.request("originate", timeout=timeout, **fields)

    async def close(self) -> int | None:
        with contextlib.suppress(Exception):
            if self._writer is not None and self.proc.returncode is None:
                await self.raw({"op": "shutdown"}, timeout=5)
        if self._writer is not None:
            self._writer.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._read_task is not None:
            self._read_task.cancel()
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
