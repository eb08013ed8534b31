"""The ``hotline engine`` process: starts from the environment, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.agi_peer import AsteriskPeer, environment
from tests.test_inbound_failures import closed_port


async def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _answer_everything(peer: AsteriskPeer) -> list[str]:
    """Play a caller who is silent: every command succeeds, every GET DATA times out."""
    seen = []
    while (command := await peer.read_command(timeout=20.0)) is not None:
        seen.append(command)
        reply = "200 result= (timeout)" if command.startswith("GET DATA") else "200 result=0"
        await peer.send_lines([reply])
    return seen


async def test_sigterm_lets_the_call_in_progress_finish(tmp_path: Path) -> None:
    port = closed_port()
    redis_path = tmp_path / "redis.db"
    env = {
        **os.environ,
        "HOTLINE_DATABASE__URL": f"sqlite:///{tmp_path / 'h.sqlite3'}",
        "HOTLINE_REDIS__URL": "",
        "HOTLINE_REDIS__EMBEDDED_PATH": str(redis_path),
        "HOTLINE_AGI__PORT": str(port),
        "HOTLINE_AMI__ENABLED": "false",
    }
    process = subprocess.Popen([sys.executable, "-m", "ivr.cli", "engine"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        await _wait_for_port(port)
        peer = await AsteriskPeer.connect(port)
        await peer.send_environment(environment("inbound", callerid="13912345678"))
        first = await peer.read_command()
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
    leftovers = subprocess.run(["pgrep", "-f", str(redis_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "embedded redis-server left running"
