"""Reading the stream: UTF-8 characters split across reads, trailing empty headers."""

from __future__ import annotations

import asyncio

from ivr.ami import AmiMessage
from tests.tcp_split import write_then_wait_until_read

from .scripted import Peer, ScriptedAmi

NAME = "张三丰"


def _event_halves() -> tuple[bytes, bytes]:
    data = (
        "Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/trunk-00000001\r\n"
        f"CallerIDNum: 13800138000\r\nCallerIDName: {NAME}\r\nUniqueid: 1795346825.0\r\n\r\n"
    ).encode()
    cut = data.index("三".encode()) + 1  # inside the 3-byte sequence of 三
    return data[:cut], data[cut:]


async def _split_event_script(peer: Peer, index: int) -> None:
    await peer.accept_login()
    first, second = _event_halves()
    await write_then_wait_until_read(peer.writer, first)  # two separate reads by the client
    await peer.send(second)
    await peer.serve_pings()


async def test_chinese_name_split_across_reads_is_kept(client_factory) -> None:
    got: asyncio.Queue[AmiMessage] = asyncio.Queue()
    async with ScriptedAmi(_split_event_script) as server:
        client = client_factory(server.port)
        client.on_event("Newchannel", got.put_nowait)
        await client.start()
        event = await asyncio.wait_for(got.get(), 5)
    assert event["CallerIDName"] == NAME
    assert event["Channel"] == "PJSIP/trunk-00000001"


async def _getvar_unset(peer: Peer, index: int) -> None:
    await peer.accept_login()
    request = await peer.read_message()
    await peer.reply(request, ("Response", "Success"), ("Variable", "GLOBALX"), ("Value", ""))
    await peer.serve_pings()


async def test_trailing_empty_header_is_kept(client_factory) -> None:
    async with ScriptedAmi(_getvar_unset) as server:
        client = client_factory(server.port)
        await client.start()
        reply = await client.action("Getvar", {"Variable": "GLOBALX"})
    assert reply["Value"] == ""  # login.ami.txt: "Value: " for an unset variable
