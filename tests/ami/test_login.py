"""Login: MD5 challenge/response and plain, on real TCP."""

from __future__ import annotations

import asyncio

import pytest

from ivr.ami import AmiAuthError
from ivr.ami.login import md5_key

from .scripted import BANNER, Peer, ScriptedAmi


def test_md5_key_matches_the_asterisk_trace() -> None:
    # login.ami.txt: Challenge 212989870, secret s3cret, Key sent by the client
    assert md5_key("212989870", "s3cret") == "2abbe290b9bdffaded37250a20dd459f"


async def _login_script(peer: Peer, index: int) -> None:
    await peer.accept_login(challenge="471625908")
    await peer.serve_pings()


@pytest.mark.parametrize("auth", ["md5", "plain"])
async def test_login_methods(client_factory, auth: str) -> None:
    async with ScriptedAmi(_login_script) as server:
        client = client_factory(server.port, auth=auth)
        await client.start()
        assert client.connected
        await client.action("Ping")
        actions = [m.action for m in server.peers[0].messages]
        login = next(m for m in server.peers[0].messages if m.action == "Login")
    assert server.errors == []
    if auth == "md5":
        assert actions[:2] == ["Challenge", "Login"]
        assert login.get("AuthType") == "MD5"
        assert login.get("Key") == md5_key("471625908", "s3cret")
        assert login.get("Secret") == ""  # the secret never crosses the wire
    else:
        assert actions[0] == "Login" and login.get("Secret") == "s3cret"
    assert login.get("Events") == "call,agent,user"  # no dialplan events: never read


async def test_refused_login_raises_auth_error(client_factory) -> None:
    async with ScriptedAmi(_login_script) as server:
        client = client_factory(server.port, secret="wrong")
        with pytest.raises(AmiAuthError, match="Authentication failed"):
            await client.start()
        assert not client.connected


async def _not_ami(peer: Peer, index: int) -> None:
    await peer.send(b"SSH-2.0-OpenSSH_9.2\r\n")
    await asyncio.sleep(5)


async def test_a_peer_that_is_not_asterisk_is_rejected(client_factory, caplog) -> None:
    async with ScriptedAmi(_not_ami) as server:
        client = client_factory(server.port, reconnect_delay_s=10)
        await client.start()  # returns: keeps retrying in the background
        assert not client.connected
    assert "not an Asterisk manager banner" in caplog.text


async def test_garbage_instead_of_a_banner_is_rejected(client_factory, caplog) -> None:
    async def garbage(peer: Peer, index: int) -> None:
        await peer.send(b"X" * 5000)
        await asyncio.sleep(5)

    async with ScriptedAmi(garbage) as server:
        client = client_factory(server.port, reconnect_delay_s=10)
        await client.start()
        assert not client.connected
    assert "no AMI banner line" in caplog.text


async def test_silent_server_times_out_the_login(client_factory) -> None:
    async def silent(peer: Peer, index: int) -> None:
        await peer.send(BANNER)
        await asyncio.sleep(5)

    async with ScriptedAmi(silent) as server:
        client = client_factory(server.port, ping_timeout_s=0.2, reconnect_delay_s=10)
        await client.start()
        assert not client.connected


async def test_unbounded_message_closes_the_link(client_factory, caplog) -> None:
    async def flood(peer: Peer, index: int) -> None:
        await peer.accept_login()
        if index == 0:
            await peer.send(b"Event: Flood\r\nData: " + b"A" * (1 << 20) + b"A" * 4096)
        await peer.serve_pings()

    async with ScriptedAmi(flood) as server:
        client = client_factory(server.port)
        await client.start()
        await server.wait_peers(2)  # the first link was dropped and replaced
        await client.wait_connected(5)
    assert "exceeds" in caplog.text
