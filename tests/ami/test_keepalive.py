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


async def _busy_then_answering(peer: Peer, index: int) -> None:
    """The Ping's reply comes late, behind a stream of events: a busy link, not a dead one."""
    await peer.accept_login()
    ping = await peer.read_message(timeout=30)
    assert ping.action == "Ping"
    for n in range(30):  # 1.5 s of events, five times the Ping's timeout
        await peer.send(f"Event: Newexten\r\nChannel: PJSIP/trunk-{n}\r\n\r\n".encode())
        await asyncio.sleep(0.05)
    await peer.reply(ping, ("Response", "Success"), ("Ping", "Pong"))
    await peer.serve_pings()


async def test_a_link_busy_with_events_is_kept_while_its_ping_reply_is_late(
        client_factory, caplog) -> None:
    events: list[str] = []
    async with ScriptedAmi(_busy_then_answering) as server:
        client = client_factory(server.port, ping_interval_s=0.1, ping_timeout_s=0.3)
        client.on_event("Newexten", lambda event: events.append(event.get("Channel")))
        await client.start()
        async with asyncio.timeout(10):
            while len(events) < 30:
                await asyncio.sleep(0.05)
        reply = await client.action("Ping")  # the same link, after the late reply
        assert reply.get("Ping") == "Pong"
        assert len(server.peers) == 1 and client.connected
    assert "no Ping reply" not in caplog.text
