"""Defect: panoramisk's keepalive Ping never checks the reply, so a half-open link lives on."""

from __future__ import annotations

import asyncio

from panoramisk import Manager

from .scripted import SECRET, Peer, ScriptedAmi


async def _half_open_then_healthy(peer: Peer, index: int) -> None:
    await peer.accept_login()
    if index == 0:
        # Half-open: the socket stays up but nothing ever comes back.
        while True:
            await peer.read_message(timeout=30)
    await peer.serve_pings()


async def test_half_open_link_is_noticed_and_replaced(client_factory, caplog) -> None:
    reconnected = asyncio.Event()
    async with ScriptedAmi(_half_open_then_healthy) as server:
        client = client_factory(
            server.port, ping_interval_s=0.1, ping_timeout_s=0.3,
            on_connect=lambda _c: reconnected.set() if len(server.peers) > 1 else None,
        )
        await client.start()
        await asyncio.wait_for(reconnected.wait(), 5)
        assert client.connected
        reply = await client.action("Ping")
        assert reply.get("Ping") == "Pong"
        first = server.peers[0]
        assert [m.action for m in first.messages][-1] == "Ping"  # the unanswered keepalive
        assert first.reader.at_eof() or await first.reader.read() == b""  # client closed it
    assert "no Ping reply" in caplog.text


async def test_plain_panoramisk_never_notices_a_half_open_link() -> None:
    async with ScriptedAmi(_half_open_then_healthy) as server:
        manager = Manager(loop=asyncio.get_running_loop(), host="127.0.0.1", port=server.port,
                          username="hotline", secret=SECRET, ping_delay=0, ping_interval=1)
        manager.connect()
        try:
            await asyncio.sleep(2.5)
            pings = [m for m in server.peers[0].messages if m.action == "Ping"]
            assert len(pings) >= 2  # it keeps pinging into the void...
            assert len(server.peers) == 1  # ...and never replaces the dead link
            assert manager._connected
        finally:
            manager.close()
