"""A failing event handler is logged; the link and the other handlers go on."""

from __future__ import annotations

import asyncio

from ivr.ami import AmiMessage

from .scripted import Peer, ScriptedAmi, frame


async def _two_events(peer: Peer, index: int) -> None:
    await peer.accept_login()
    await peer.send(frame(("Event", "Newchannel"), ("Privilege", "call,all"),
                          ("Channel", "PJSIP/trunk-00000001"), ("CallerIDNum", "13800138000")))
    await peer.send(frame(("Event", "Hangup"), ("Privilege", "call,all"),
                          ("Channel", "PJSIP/trunk-00000001"), ("Cause", "16")))
    await peer.serve_pings()


async def test_failing_handlers_are_logged_and_the_link_survives(client_factory, caplog) -> None:
    hangups: asyncio.Queue[AmiMessage] = asyncio.Queue()

    def broken(event: AmiMessage) -> None:
        raise RuntimeError(f"handler bug on {event['CallerIDNum']}")

    async def broken_async(event: AmiMessage) -> None:
        raise KeyError("async handler bug")

    async with ScriptedAmi(_two_events) as server:
        client = client_factory(server.port)
        client.on_event("Newchannel", broken)
        client.on_event("*", broken_async)
        client.on_event("Hangup", hangups.put_nowait)
        await client.start()
        event = await asyncio.wait_for(hangups.get(), 5)
        assert event["Cause"] == "16"
        reply = await client.action("Ping")
        assert reply.get("Ping") == "Pong"
        assert client.connected and len(server.peers) == 1
    assert "handler bug on 138****00" in caplog.text  # logged, number masked
    assert "13800138000" not in caplog.text
    assert "async handler bug" in caplog.text
