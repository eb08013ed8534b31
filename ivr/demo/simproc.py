"""Start the simulator as a separate process and talk to it over its JSON-lines control port."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivr.assets import agi_scripts_dir, asterisk_conf_dir, prompts_dir

if TYPE_CHECKING:
    from ivr.engine import Engine

READY_TIMEOUT_S = 60.0


class SimulatorError(Exception):
    """The simulator did not start, or answered a control request with an error."""


class SimControl:
    """The simulator's JSON-lines control connection: requests matched to answers by id."""

    def __init__(self, error: type[Exception] = SimulatorError) -> None:
        self._error = error
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader_task: asyncio.Task[None] | None = None

    async def connect(self, port: int) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            "127.0.0.1", port, limit=64 * 1024 * 1024
        )
        self._reader_task = asyncio.create_task(self._read_responses())

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
                    future.set_exception(self._error("simulator control link closed"))
            self._pending.clear()

    async def raw(self, request: Mapping[str, Any], timeout: float | None = None
                  ) -> dict[str, Any]:
        """Send one request (an ``id`` is added) and return the whole response message."""
        if self._writer is None:
            raise self._error("not connected to the simulator")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message = {**request, "id": request_id}
        self._writer.write(json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n")
        await self._writer.drain()
        return await asyncio.wait_for(future, timeout)

    async def request(self, op: str, timeout: float | None = None, **fields: Any) -> Any:
        """Send ``op`` and return its result; a refusal raises (a call waits until it ends)."""
        response = await self.raw({"op": op, **fields}, timeout)
        if not response.get("ok"):
            raise self._error(f"simulator refused {op}: {response.get('error')}")
        return response.get("result")

    async def call(self, caller: Mapping[str, Any], timeout: float | None = None
                   ) -> dict[str, Any]:
        return await self.request("call", timeout=timeout, caller=dict(caller))

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task


@dataclass
class SimulatorProcess:
    """A running ``python -m sim serve`` and a control connection to it."""

    process: asyncio.subprocess.Process
    control_port: int
    ami_port: int | None
    ami_secret: str
    control: SimControl = field(default_factory=SimControl)
    real_start: float = 0.0  # wall time at simulated time 0: stamp s happened at this + s/speed

    @classmethod
    async def start(
        cls,
        *,
        agi_url: str,
        speed: float = 1.0,
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
        dialplans: Path | None = None,
        sounds: Path | None = None,
        globals_: Mapping[str, str] | None = None,
    ) -> SimulatorProcess:
        secret = secrets.token_urlsafe(24)
        dialplans = dialplans or asterisk_conf_dir() / "extensions.conf"
        sounds = sounds or prompts_dir()
        args = [
            sys.executable, "-m", "sim", "serve",
            "--dialplans", str(dialplans), "--sounds", str(sounds),
            "--prompt-prefix", "hotline", "--speed", str(speed),
            "--control-port", "0", "--ami-port", "0", "--ami-user", "hotline",
            "--ami-secret-env", "HOTLINE_SIM_AMI_SECRET",
            "--global", f"HOTLINE_AGI={agi_url}",
            "--global", f"HOTLINE_AGI_BIN={agi_scripts_dir()}",
            "--agi-dir", str(agi_scripts_dir()),  # the scripts' working folder, from any cwd
            "--stop-on-stdin-eof",  # never outlives this process, even one killed outright
        ]
        for name, value in (globals_ or {}).items():
            args += ["--global", f"{name}={value}"]
        args += list(extra_args)
        stderr = log_path.open("ab") if log_path else asyncio.subprocess.DEVNULL
        env = {**os.environ, "HOTLINE_SIM_AMI_SECRET": secret, "PYTHONUNBUFFERED": "1"}
        process = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
            env=env)
        try:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT_S)
            ready = json.loads(line or b"{}")
            if not ready.get("ready"):
                raise SimulatorError(f"simulator did not report ready: {line!r}")
        except (TimeoutError, json.JSONDecodeError, SimulatorError) as exc:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise SimulatorError(f"simulator failed to start: {exc}") from exc
        sim = cls(process, int(ready["control_port"]), ready.get("ami_port"), secret,
                  real_start=float(ready.get("clock", {}).get("real_start", 0.0)))
        await sim.control.connect(sim.control_port)
        return sim

    async def connect_engine(self, engine: Engine) -> None:
        """Point the engine's AMI link at this simulator's AMI and connect it (nothing
        without an AMI port)."""
        if self.ami_port is None:
            return
        ami = engine.settings.ami
        ami.enabled, ami.port, ami.secret = True, int(self.ami_port), self.ami_secret
        await engine.start_ami()

    async def request(self, op: str, **payload: Any) -> Any:
        return await self.control.request(op, **payload)

    async def call(self, caller: Mapping[str, Any]) -> dict[str, Any]:
        return await self.control.call(caller)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.control.raw({"op": "shutdown"}, 5.0)
        await self.control.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10.0)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
