"""No replay: an action in flight when the link drops fails, and is never sent again."""

from __future__ import annotations

import pytest

from ivr.ami import AmiConnectionLost, AmiOriginateLost

from .scripted import Peer, ScriptedAmi


async def _drop_after_originate(peer: Peer, index: int) -> None:
    await peer.accept_login()
    if index == 0:
        while (await peer.read_message()).action != "Originate":
            pass
        peer.writer.transport.abort()  # Asterisk got it; its answer never arrives
        return
    await peer.serve_pings()


def _originates(peer: Peer) -> int:
    return sum(1 for m in peer.messages if m.action == "Originate")


async def test_originate_in_flight_fails_and_is_never_resent(client_factory) -> None:
    async with ScriptedAmi(_drop_after_originate) as server:
        client = client_factory(server.port)
        await client.start()
        with pytest.raises(AmiOriginateLost, match="not re-sent"):
            await client.originate(channel="Local/s@callee-answers/n", context="vendor-offer",
                                   exten="s", caller_id="12349", variables={"ORDER_ID": "77"},
                                   timeout_ms=30000, action_id="orig-77")
        await server.wait_peers(2)
        await client.wait_connected(5)
        # the new link works, and the Ping's reply is a barrier: whatever the client sent on
        # this link before the Ping (a replayed Originate) has been read by the server
        await client.action("Ping")
        assert _originates(server.peers[0]) == 1
        assert _originates(server.peers[1]) == 0


async def test_other_actions_in_flight_fail_with_connection_lost(client_factory) -> None:
    async def drop_on_getvar(peer: Peer, index: int) -> None:
        await peer.accept_login()
        while (await peer.read_message()).action != "Getvar":
            pass
        peer.writer.transport.abort()

    async with ScriptedAmi(drop_on_getvar) as server:
        client = client_factory(server.port, reconnect_delay_s=10)
        await client.start()
        with pytest.raises(AmiConnectionLost) as info:
            await client.action("Getvar", {"Variable": "X"})
        assert not isinstance(info.value, AmiOriginateLost)
        with pytest.raises(AmiConnectionLost, match="not connected"):
            await client.action("Ping")
