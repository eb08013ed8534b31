"""Keepalive: a Ping whose reply must arrive in time, so a half-open link is replaced."""

from __future__ import annotations

import asyncio

from .scripted import Peer, ScriptedAmi


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
