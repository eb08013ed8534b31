"""A Redis primary, its replica and three Sentinels watching them, all private loopback
processes of Debian's redis-server, for a test that kills the primary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis.asyncio as aioredis

from tests.callstack import until
from tests.ports import closed_port
from tests.processes import RedisServer, listening

SERVICE = "hotline"
SENTINELS = 3


class SentinelGroup:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.primary = RedisServer(closed_port(), _dir(folder, "primary"))
        self.replica = RedisServer(closed_port(), _dir(folder, "replica"),
                                   "--replicaof", "127.0.0.1", "0")
        self.sentinel_ports = [closed_port() for _ in range(SENTINELS)]
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    async def start(self) -> None:
        await self.primary.start()
        self.replica.args = ("--replicaof", "127.0.0.1", str(self.primary.port))
        await self.replica.start()
        for i, port in enumerate(self.sentinel_ports):
            folder = _dir(self.folder, f"sentinel{i}")
            conf = folder / "sentinel.conf"  # the Sentinel rewrites its own file
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n")
            process = subprocess.Popen([self.primary.binary, str(conf), "--sentinel"],
                                       stdout=(folder / "sentinel.log").open("ab"),
                                       stderr=subprocess.STDOUT)
            self._sentinels.append(process)
            await listening(port, process, timeout_s=10)
        await until(self._watching, "the replica in sync and the Sentinels acquainted")

    async def primary_port(self) -> int:
        """The primary's port as the first Sentinel names it now."""
        client = aioredis.Redis(port=self.sentinel_ports[0], socket_timeout=2)
        try:
            _host, port = await client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            return int(port)
        finally:
            await client.aclose()

    async def failed_over(self) -> None:
        """Until every Sentinel names the replica as the primary."""
        async def promoted() -> bool:
            for port in self.sentinel_ports:
                client = aioredis.Redis(port=port, socket_timeout=2)
                try:
                    _host, named = await client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
                finally:
                    await client.aclose()
                if int(named) != self.replica.port:
                    return False
            return True

        await until(promoted, "the Sentinels to promote the replica", timeout_s=60)

    async def _watching(self) -> bool:
        replica = aioredis.Redis(port=self.replica.port, socket_timeout=2)
        try:
            info = await replica.info("replication")
        finally:
            await replica.aclose()
        if info.get("master_link_status") != "up":
            return False
        for port in self.sentinel_ports:
            client = aioredis.Redis(port=port, socket_timeout=2)
            try:
                others = await client.execute_command("SENTINEL", "SENTINELS", SERVICE)
                replicas = await client.execute_command("SENTINEL", "REPLICAS", SERVICE)
            finally:
                await client.aclose()
            if len(others) < SENTINELS - 1 or not replicas:
                return False
        return True

    def stop(self) -> None:
        for process in self._sentinels:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        self.replica.stop()
        self.primary.stop()


def _dir(folder: Path, name: str) -> Path:
    path = folder / name
    path.mkdir(parents=True, exist_ok=True)
    return path
