"""Originate: always an explicit Async, and its outcomes."""

from __future__ import annotations

import asyncio

import pytest

from ivr.ami import AmiActionError, AmiResponse, AmiTimeout

from .scripted import Peer, Received, ScriptedAmi, frame

QUEUED = ("Message", "Originate successfully queued")


def _originate_response(request: Received, reason: int) -> bytes:
    """OriginateResponse with the header order of outbound_*.ami.txt."""
    success = reason == 4
    return frame(
        ("Event", "OriginateResponse"), ("Privilege", "call,all"),
        ("ActionID", request.get("ActionID")),
        ("Response", "Success" if success else "Failure"),
        ("Channel", "Local/s@callee-00000002;1" if success else request.get("Channel")),
        ("Context", request.get("Context")), ("Exten", request.get("Exten")),
        ("Reason", str(reason)),
        ("Uniqueid", "1795346886.4" if success else "<unknown>"),
        ("CallerIDNum", "12349"), ("CallerIDName", "<unknown>"),
    )


def _callee(reason: int):
    async def script(peer: Peer, index: int) -> None:
        await peer.accept_login()
        request = await peer.read_message()
        await peer.reply(request, ("Response", "Success"), QUEUED)
        await peer.send(frame(("Event", "Newchannel"), ("Privilege", "call,all"),
                              ("Channel", "Local/s@callee-00000002;1")))
        await asyncio.sleep(0.05)
        await peer.send(_originate_response(request, reason))
        await peer.serve_pings()

    return script


@pytest.mark.parametrize(("reason", "name"), [(4, "answered"), (5, "busy"), (8, "congestion"),
                                             (3, "no_answer"), (0, "failed"), (1, "hungup")])
async def test_originate_outcomes(client_factory, reason: int, name: str) -> None:
    async with ScriptedAmi(_callee(reason)) as server:
        client = client_factory(server.port)
        await client.start()
        outcome = await client.originate(
            channel="Local/s@callee/n", context="vendor-offer", exten="s",
            caller_id='"12349热线" <12349>', variables={"ORDER_ID": "77", "NOTE": "a,b=c"},
            timeout_ms=30000, action_id="orig-77",
        )
        request = next(m for m in server.peers[0].messages if m.action == "Originate")
    assert request.get("Async") == "true"
    assert request.get("ActionID") == "orig-77"
    assert request.get("Priority") == "1" and request.get("Timeout") == "30000"
    assert request.get("CallerID") == '"12349热线" <12349>'
    assert request.get_all("Variable") == ["ORDER_ID=77", "NOTE=a\\,b=c"]
    assert (outcome.reason, outcome.reason_name) == (reason, name)
    assert outcome.action_id == "orig-77"
    assert outcome.success == (reason == 4) and outcome.answered == (reason == 4)
    assert outcome.uniqueid == ("1795346886.4" if reason == 4 else None)


async def test_refused_originate_raises_with_asterisk_message(client_factory) -> None:
    async def refuse(peer: Peer, index: int) -> None:
        await peer.accept_login()
        request = await peer.read_message()
        await peer.reply(request, ("Response", "Error"), ("Message", "Permission denied"))
        await peer.serve_pings()

    async with ScriptedAmi(refuse) as server:
        client = client_factory(server.port)
        await client.start()
        with pytest.raises(AmiActionError, match="Permission denied"):
            await client.originate(channel="Local/s@callee/n", context="vendor-offer", exten="s",
                                   caller_id="12349", variables={}, timeout_ms=1000)
        assert client.connected


async def _sync_originate(peer: Peer, index: int) -> None:
    await peer.accept_login()
    request = await peer.read_message()
    await peer.reply(request, ("Response", "Success"), QUEUED)
    await peer.serve_pings()


async def test_generic_originate_action_gets_explicit_async(client_factory) -> None:
    async with ScriptedAmi(_sync_originate) as server:
        client = client_factory(server.port)
        await client.start()
        reply = await client.action("Originate", {"Channel": "Local/s@callee/n",
                                                  "Context": "vendor-offer", "Exten": "s",
                                                  "Priority": "1"})
        assert isinstance(reply, AmiResponse) and reply.success
        assert reply.message == "Originate successfully queued"
        request = next(m for m in server.peers[0].messages if m.action == "Originate")
        assert request.get("Async") == "false"
        assert (await client.action("Ping")).get("Ping") == "Pong"


async def test_action_without_reply_times_out(client_factory) -> None:
    async def mute(peer: Peer, index: int) -> None:
        await peer.accept_login()
        while (await peer.read_message(timeout=30)).action != "Getvar":
            pass
        await peer.serve_pings()

    async with ScriptedAmi(mute) as server:
        client = client_factory(server.port)
        await client.start()
        with pytest.raises(AmiTimeout):
            await client.action("Getvar", {"Variable": "X"}, timeout=0.2)
        assert (await client.action("Ping")).get("Ping") == "Pong"
