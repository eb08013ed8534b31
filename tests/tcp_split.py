"""Two TCP reads on demand: write one part, wait until the peer's program has read it, then
write the rest. Read from the kernel's socket table (Linux ``/proc/net/tcp``): the part has
left our send queue and the receiving socket's queue is empty again."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def _hex_endpoint(address: tuple[str, int]) -> tuple[str, int]:
    host, port = address[0], address[1]
    if ":" in host:
        packed = socket.inet_pton(socket.AF_INET6, host)
        words = [packed[i:i + 4][::-1].hex().upper() for i in range(0, 16, 4)]
        return "".join(words), port
    return socket.inet_aton(host)[::-1].hex().upper(), port


def _queues(local: tuple[str, int], remote: tuple[str, int]) -> tuple[int, int] | None:
    """(send queue, receive queue) of the socket from ``local`` to ``remote``, if listed."""
    want_local, want_remote = _hex_endpoint(local), _hex_endpoint(remote)
    for table in TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            here, there, queues = fields[1], fields[2], fields[4]
            host, port = here.rsplit(":", 1)
            peer_host, peer_port = there.rsplit(":", 1)
            if ((host, int(port, 16)) == want_local
                    and (peer_host, int(peer_port, 16)) == want_remote):
                tx, rx = queues.split(":")
                return int(tx, 16), int(rx, 16)
    return None


async def write_then_wait_until_read(writer: asyncio.StreamWriter, part: bytes,
                                     timeout_s: float = 10.0) -> None:
    """Send ``part`` and return once the other end's program has read all of it."""
    writer.write(part)
    await writer.drain()
    mine = writer.get_extra_info("sockname")
    theirs = writer.get_extra_info("peername")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        sent = _queues(mine, theirs)
        received = _queues(theirs, mine)
        if sent is not None and received is not None and sent[0] == 0 and received[1] == 0:
            return
        if loop.time() > deadline:
            raise AssertionError(f"peer did not read {len(part)} bytes: {sent} / {received}")
        await asyncio.sleep(0.005)
