"""HAProxy from Debian in front of engine processes, run with the shipped configuration
(``asterisk_conf/haproxy-fastagi.cfg``) on the test's own ports."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.processes import listening

SHIPPED = Path(__file__).resolve().parents[1] / "asterisk_conf" / "haproxy-fastagi.cfg"


def configured(frontend_port: int, engine_ports: list[int]) -> str:
    """The shipped configuration, listening on ``frontend_port``, its servers replaced by
    one per engine port (every other setting as shipped)."""
    text = SHIPPED.read_text()
    text, bound = re.subn(r"bind 127\.0\.0\.1:\d+", f"bind 127.0.0.1:{frontend_port}", text)
    text, servers = re.subn(r"\n    server engine\d+ .*", "", text)
    assert bound == 1 and servers >= 1, "the shipped HAProxy configuration changed shape"
    return text.rstrip("\n") + "\n" + "".join(
        f"    server engine{i} 127.0.0.1:{port} check\n"
        for i, port in enumerate(engine_ports, start=1))


class HAProxy:
    """``haproxy -db`` on a configuration of ours; stopped (SIGTERM) by ``stop``."""

    def __init__(self, folder: Path, frontend_port: int, engine_ports: list[int]) -> None:
        binary = shutil.which("haproxy") or (
            "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
        if binary is None:
            pytest.skip("haproxy is not installed (.ci/run installs it)")
        self.binary, self.port = binary, frontend_port
        self.config = folder / "haproxy.cfg"
        self.config.write_text(configured(frontend_port, engine_ports))
        self.log = folder / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        subprocess.run([self.binary, "-c", "-q", "-f", str(self.config)], check=True,
                       timeout=30)
        self.process = subprocess.Popen([self.binary, "-db", "-f", str(self.config)],
                                        stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        await listening(self.port, self.process, timeout_s=10)

    async def engines_up(self, count: int, timeout_s: float = 30.0) -> None:
        """Until HAProxy's health checks have found engines 1..``count`` up (its log says so)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        wanted = {f"Server engines/engine{i} is UP" for i in range(1, count + 1)}
        while not all(line in self.log.read_text(errors="replace") for line in wanted):
            assert loop.time() < deadline, f"HAProxy did not see the engines up: {self.log}"
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
