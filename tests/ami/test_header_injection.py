"""Header values with CR, LF or NUL are refused before anything is written."""

from __future__ import annotations

import pytest

from ivr.ami import AmiResponse

from .scripted import Peer, ScriptedAmi

INJECTIONS = [
    "x\r\nAction: Originate\r\nChannel: PJSIP/110",
    "x\nAction: Originate",  # a bare LF is enough for Asterisk
    "x\rAction: Originate",
    "x\x00tail",
]


async def _record_script(peer: Peer, index: int) -> None:
    await peer.accept_login()
    await peer.serve_pings()


def _actions_after_login(peer: Peer) -> list[str]:
    names = [m.action for m in peer.messages]
    return names[names.index("Login") + 1:]


@pytest.mark.parametrize("value", INJECTIONS)
async def test_unsafe_values_are_refused_before_sending(client_factory, value: str) -> None:
    async with ScriptedAmi(_record_script) as server:
        client = client_factory(server.port)
        await client.start()
        with pytest.raises(ValueError, match="refused"):
            await client.action("Setvar", {"Variable": "NOTE", "Value": value})
        with pytest.raises(ValueError):
            await client.action("Setvar", {"Variable": value, "Value": "1"})
        with pytest.raises(ValueError):
            await client.originate(channel="Local/s@callee/n", context="vendor-offer", exten="s",
                                   caller_id=f'"{value}" <12349>', variables={}, timeout_ms=1000)
        with pytest.raises(ValueError):
            await client.originate(channel="Local/s@callee/n", context="vendor-offer", exten="s",
                                   caller_id="12349", variables={"NOTE": value}, timeout_ms=1000)
        reply = await client.action("Ping")  # the link is fine and nothing else was written
        assert isinstance(reply, AmiResponse) and reply.get("Ping") == "Pong"
        assert _actions_after_login(server.peers[0]) == ["Ping"]
        assert b"Originate" not in b"".join(repr(m).encode() for m in server.peers[0].messages)


async def test_bad_header_names_are_refused(client_factory) -> None:
    async with ScriptedAmi(_record_script) as server:
        client = client_factory(server.port)
        await client.start()
        for name in ("Bad Name", "Evil:\r\nAction", "", "X\n"):
            with pytest.raises(ValueError):
                await client.action("Setvar", {name: "1"})
        with pytest.raises(ValueError):
            await client.action("Ping\r\nAction: Originate")
        assert client.connected
