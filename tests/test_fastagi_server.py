"""The engine's FastAGI server over real TCP, against Asterisk's recorded behaviour."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from ivr.agi import AgiCommandError, AgiHangup, AgiProtocolError, AgiSession
from ivr.agi.command import build_command, quote_argument
from ivr.agi.server import FastAgiServer
from ivr.config import AgiSettings
from tests.agi_peer import AsteriskPeer, environment
from tests.tcp_split import write_then_wait_until_read
from tests.traces import split_agi_trace

Handler = Callable[[AgiSession], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[FastAgiServer]]]:
    servers: list[FastAgiServer] = []

    async def start(routes: dict[str, Handler], **overrides: float) -> FastAgiServer:
        settings = AgiSettings(port=0, header_timeout_s=overrides.get("header_timeout_s", 0.5),
                               reply_timeout_s=overrides.get("reply_timeout_s", 2.0),
                               header_max_bytes=int(overrides.get("header_max_bytes", 4096)))
        server = FastAgiServer(routes, settings)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


async def replay(server: FastAgiServer, trace: str) -> AsteriskPeer:
    """Play Asterisk's side of ``trace`` against the server; check every command it sends."""
    env, exchanges = split_agi_trace(trace)
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(env)
    for command, reply in exchanges:
        await peer.expect(command, reply)
    assert await peer.read_until_eof() == []
    await peer.close()
    return peer


async def test_menu_trace_every_reply_kind_is_understood(serve) -> None:
    seen: dict[str, object] = {}

    async def menu(agi: AgiSession) -> None:
        seen["args"] = agi.env.args
        seen["script"] = agi.env.script
        await agi.answer()
        seen["cid"] = await agi.get_variable("CALLERID(num)")
        seen["barge"] = await agi.stream_file("welcome", "0123456789*#")
        seen["menu"] = await agi.get_data("menu", 5000, 1)
        seen["beep"] = await agi.get_data("beep", 4000, 3)
        seen["wait"] = await agi.wait_for_digit(5000)
        await agi.set_variable("CHOICE", "1")
        seen["full"] = await agi.get_full_variable("${CHOICE}-${CALLERID(num)}")
        seen["unset"] = await agi.get_variable("NOSUCHVAR")
        seen["missing"] = await agi.command("STREAM FILE", "no-such-prompt", "")
        seen["exec"] = await agi.exec("Playback", "beep")
        seen["exec_missing"] = await agi.exec("NoSuchApp", "foo")
        with pytest.raises(AgiCommandError) as unknown:
            await agi.command("FOOBAR", "baz")
        seen["510"] = unknown.value.code
        with pytest.raises(AgiCommandError) as usage:
            await agi.command("GET DATA")
        seen["520"] = usage.value
        await agi.verbose("trace done", 1)
        seen["status"] = (await agi.command("CHANNEL STATUS")).value

    server = await serve({"menu": menu})
    await replay(server, "menu.agi.txt")
    assert seen["args"] == ("first arg", "second")
    assert seen["script"] == "menu"
    assert seen["cid"] == "13800138000"
    assert seen["barge"].digit == "1" and seen["barge"].endpos == 13760
    assert seen["menu"].digits == "2" and not seen["menu"].timed_out
    assert seen["beep"].digits == "3"
    assert seen["wait"] == "9"
    assert seen["full"] == "1-13800138000"
    assert seen["unset"] is None
    assert (seen["missing"].result, seen["missing"].endpos) == ("-1", 0)
    assert seen["exec"] == 0 and seen["exec_missing"] == -2
    assert seen["510"] == 510
    assert seen["520"].code == 520 and "receive DTMF data" in seen["520"].text
    assert seen["status"] == 6
    assert server.sessions_failed == 0


async def test_hangup_trace_keeps_sync_through_hangup_line_and_511(serve) -> None:
    seen: dict[str, object] = {}

    async def hangup(agi: AgiSession) -> None:
        await agi.answer()
        with pytest.raises(AgiHangup):
            await agi.get_data("menu", 10000, 4)
        with pytest.raises(AgiHangup):
            await agi.wait_for_digit(1000)
        with pytest.raises(AgiHangup):
            await agi.stream_file("beep")
        seen["hungup"] = agi.hungup
        reply = await agi.command("SET VARIABLE", "X", "after hangup")
        seen["set_after_hangup"] = reply.result

    server = await serve({"hangup": hangup})
    await replay(server, "hangup.agi.txt")
    assert seen == {"hungup": True, "set_after_hangup": "1"}


async def test_vendor_offer_trace(serve) -> None:
    seen: dict[str, object] = {}

    async def offer(agi: AgiSession) -> None:
        seen["order"] = await agi.get_variable("ORDER_ID")
        seen["key"] = (await agi.get_data("beep", 6000, 1)).digits
        await agi.set_variable("ACCEPTED", "yes")

    server = await serve({"vendor_offer": offer})
    await replay(server, "vendor_offer.agi.txt")
    assert seen == {"order": "77", "key": "1"}


async def test_unsolicited_hangup_between_commands_does_not_shift_replies(serve) -> None:
    values: list[str | None] = []

    async def flow(agi: AgiSession) -> None:
        values.append(await agi.get_variable("A"))
        values.append(await agi.get_variable("B"))
        values.append(await agi.get_variable("C"))

    server = await serve({"flow": flow})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow"))
    await peer.expect("GET VARIABLE A", ["200 result=1 (a)", "HANGUP"])
    await peer.expect("GET VARIABLE B", ["200 result=1 (b)"])
    await peer.expect("GET VARIABLE C", ["HANGUP", "200 result=1 (c)"])
    await peer.read_until_eof()
    assert values == ["a", "b", "c"]


async def test_get_data_timeout_with_no_digits(serve) -> None:
    got = []

    async def flow(agi: AgiSession) -> None:
        got.append(await agi.get_data("menu", 8000, 1))

    server = await serve({"flow": flow})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow"))
    await peer.expect("GET DATA menu 8000 1", ["200 result= (timeout)"])
    await peer.read_until_eof()
    assert got[0].digits == "" and got[0].timed_out


async def test_playback_cut_by_hangup_is_not_taken_for_a_missing_prompt(serve) -> None:
    outcome = []

    async def flow(agi: AgiSession) -> None:
        try:
            await agi.stream_file("hotline/zh/welcome")
        except AgiHangup:
            outcome.append("hangup")

    server = await serve({"flow": flow})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow"))
    await peer.expect('STREAM FILE hotline/zh/welcome ""', ["200 result=-1 endpos=0"])
    await peer.expect("CHANNEL STATUS", ["HANGUP", "511 Command Not Permitted on a dead channel"])
    await peer.read_until_eof()
    assert outcome == ["hangup"]


async def test_missing_prompt_on_a_live_channel_is_reported_and_the_call_goes_on(serve) -> None:
    outcome = []

    async def flow(agi: AgiSession) -> None:
        outcome.append((await agi.stream_file("no-such-prompt")).missing)
        outcome.append(await agi.get_variable("X"))

    server = await serve({"flow": flow})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow"))
    await peer.expect('STREAM FILE no-such-prompt ""', ["200 result=-1 endpos=0"])
    await peer.expect("CHANNEL STATUS", ["200 result=6"])
    await peer.expect("GET VARIABLE X", ["200 result=1 (x)"])
    await peer.read_until_eof()
    assert outcome == [True, "x"]


async def test_get_data_returns_star_and_hash_keys(serve) -> None:
    got = []

    async def flow(agi: AgiSession) -> None:
        got.append((await agi.get_data("menu", 8000, 1)).digits)
        got.append((await agi.get_data("menu", 8000, 3)).digits)

    server = await serve({"flow": flow})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow"))
    await peer.expect("GET DATA menu 8000 1", ["200 result=*"])
    await peer.expect("GET DATA menu 8000 3", ["200 result=0*1 (timeout)"])
    await peer.read_until_eof()
    assert got == ["*", "0*1"]


# header blocks read line by line (a bound below the read buffer) and whole
HEADER_BOUNDS = [4096, 16384]


@pytest.mark.parametrize("header_max_bytes", HEADER_BOUNDS)
async def test_utf8_caller_name_split_across_tcp_writes(serve, header_max_bytes: int) -> None:
    names = []

    async def flow(agi: AgiSession) -> None:
        names.append(agi.env.calleridname)

    server = await serve({"flow": flow}, header_max_bytes=header_max_bytes)
    peer = await AsteriskPeer.connect(server.port)
    block = ("\n".join(environment("flow", name="张三丰")) + "\n\n").encode("utf-8")
    cut = block.index("三".encode()) + 1  # inside the three bytes of 三
    await write_then_wait_until_read(peer.writer, block[:cut])  # two reads for the server
    peer.writer.write(block[cut:])
    await peer.writer.drain()
    await peer.read_until_eof()
    assert names == ["张三丰"]


async def test_stalled_header_is_cut_off_while_other_calls_are_served(serve) -> None:
    served = []

    async def flow(agi: AgiSession) -> None:
        served.append(await agi.get_variable("X"))

    server = await serve({"flow": flow}, header_timeout_s=0.5)
    stalled = await AsteriskPeer.connect(server.port)
    await stalled.send_lines(environment("flow")[:5])  # no blank line: never completes
    good = await AsteriskPeer.connect(server.port)
    await good.send_environment(environment("flow"))
    await good.expect("GET VARIABLE X", ["200 result=1 (ok)"])
    assert await good.read_until_eof() == []
    assert served == ["ok"]
    assert await stalled.read_until_eof(timeout=5.0) == []  # closed by the engine
    assert server.sessions_failed == 1


async def test_a_block_larger_than_the_read_buffer_is_read_within_its_bound(serve) -> None:
    """Read whole, a block overrunning the 8 KiB read buffer goes on line by line: served
    up to ``header_max_bytes``, refused beyond."""
    arguments = []

    async def flow(agi: AgiSession) -> None:
        arguments.append(agi.env.args)

    server = await serve({"flow": flow}, header_max_bytes=16384)
    many = [f"agi_arg_{i}: {'x' * 150}" for i in range(1, 61)]  # about 10 KB
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow") + many)
    assert await peer.read_until_eof() == []
    assert len(arguments) == 1 and len(arguments[0]) == 60
    too_many = await AsteriskPeer.connect(server.port)
    await too_many.send_environment(environment("flow") + many * 2)  # about 20 KB
    assert await too_many.read_until_eof() == []
    assert len(arguments) == 1 and server.sessions_failed == 1


async def test_oversized_header_is_refused(serve) -> None:
    server = await serve({}, header_max_bytes=2048)
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_lines([f"agi_arg_{i}: {'x' * 100}" for i in range(40)])
    assert await peer.read_until_eof() == []
    assert server.sessions_failed == 1


@pytest.mark.parametrize("header_max_bytes", HEADER_BOUNDS)
async def test_garbage_header_is_refused(serve, header_max_bytes: int) -> None:
    server = await serve({}, header_max_bytes=header_max_bytes)
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_lines(["GET / HTTP/1.1", "Host: x", ""])
    assert await peer.read_until_eof() == []


@pytest.mark.parametrize("header_max_bytes", HEADER_BOUNDS)
@pytest.mark.parametrize("reset", [False, True])
async def test_a_health_check_is_a_probe_not_a_failed_call(
        serve, caplog: pytest.LogCaptureFixture, reset: bool, header_max_bytes: int) -> None:
    """HAProxy's check connects and closes (FIN, or RST) without a byte: counted, not logged;
    a connection closed inside its header is still a dropped call."""
    server = await serve({}, header_max_bytes=header_max_bytes)
    caplog.set_level(logging.INFO, logger="ivr.agi.server")
    for _ in range(3):
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        if reset:
            writer.transport.abort()
        else:
            writer.close()
        await writer.wait_closed()
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_lines(["agi_network: yes"])  # and no blank line: cut off inside it
    await peer.close()

    def counted() -> bool:
        return server.probes == 3 and server.sessions_failed == 1

    async with asyncio.timeout(10):
        while not counted():
            await asyncio.sleep(0.01)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "FastAGI connection dropped before a call started: connection closed inside the AGI "
        "header block"]


async def test_eof_in_the_middle_of_a_command(serve) -> None:
    outcome = []
    ended = asyncio.Event()

    async def flow(agi: AgiSession) -> None:
        try:
            await agi.get_data("menu", 8000, 1)
        except AgiHangup:
            outcome.append("hangup")
            raise
        finally:
            ended.set()

    server = await serve({"flow": flow})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow"))
    assert await peer.read_command() == "GET DATA menu 8000 1"
    await peer.close()
    await asyncio.wait_for(ended.wait(), 30)
    assert outcome == ["hangup"]
    assert (server.sessions_served, server.sessions_failed) == (1, 0)


async def test_a_failing_flow_routes_the_caller_to_a_human(serve) -> None:
    async def broken(agi: AgiSession) -> None:
        raise RuntimeError("bug")

    server = await serve({"broken": broken})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("broken"))
    await peer.expect('SET VARIABLE HOTLINE_REASON engine_error', ["200 result=1"])
    await peer.expect('SET VARIABLE HOTLINE_ROUTE operator', ["200 result=1"])
    assert await peer.read_until_eof() == []
    assert server.sessions_failed == 1


async def test_a_call_cut_off_by_shutdown_goes_to_a_human_and_no_error_is_logged(
        serve, caplog: pytest.LogCaptureFixture) -> None:
    """Python 3.11's start_server reads the exception of each finished connection task; a
    task that ended cancelled made that raise, one asyncio ERROR per call cut off."""
    async def waits_for_a_key(agi: AgiSession) -> None:
        await agi.get_data("menu", 5000, 1)

    server = await serve({"flow": waits_for_a_key})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow"))
    assert await peer.read_command() == "GET DATA menu 5000 1"
    closing = asyncio.create_task(server.close())
    await peer.expect("SET VARIABLE HOTLINE_REASON engine_shutdown", ["200 result=1"])
    await peer.expect("SET VARIABLE HOTLINE_ROUTE operator", ["200 result=1"])
    assert await peer.read_until_eof() == []
    await closing
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_unknown_script_routes_the_caller_to_a_human(serve) -> None:
    server = await serve({})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("nosuchscript?x=1"))
    await peer.expect("SET VARIABLE HOTLINE_REASON unknown_script", ["200 result=1"])
    await peer.expect("SET VARIABLE HOTLINE_ROUTE operator", ["200 result=1"])
    assert await peer.read_until_eof() == []


async def test_silent_peer_cannot_hold_a_session_forever(serve) -> None:
    errors = []

    async def flow(agi: AgiSession) -> None:
        try:
            await agi.get_variable("X")
        except AgiProtocolError as exc:
            errors.append(str(exc))
            raise

    server = await serve({"flow": flow}, reply_timeout_s=0.3)
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow"))
    assert await peer.read_command() == "GET VARIABLE X"
    # No reply: the engine gives up, still tries to leave the call to a human, and closes.
    rest = await peer.read_until_eof(timeout=10.0)
    assert rest[0] == "SET VARIABLE HOTLINE_REASON engine_error"
    assert errors and "no reply" in errors[0]


async def test_garbage_reply_line_is_a_protocol_error(serve) -> None:
    errors = []

    async def flow(agi: AgiSession) -> None:
        try:
            await agi.get_variable("X")
        except AgiProtocolError as exc:
            errors.append(exc)

    server = await serve({"flow": flow})
    peer = await AsteriskPeer.connect(server.port)
    await peer.send_environment(environment("flow"))
    await peer.expect("GET VARIABLE X", ["HTTP/1.1 400 Bad Request"])
    await peer.read_until_eof()
    assert len(errors) == 1


def test_command_encoding_refuses_line_injection() -> None:
    assert build_command("STREAM FILE", "hotline/zh/menu", "") == 'STREAM FILE hotline/zh/menu ""'
    assert quote_argument('say "hi"\\') == '"say \\"hi\\"\\\\"'
    for bad in ("a\nHANGUP", "a\rb", "a\x00"):
        with pytest.raises(ValueError):
            quote_argument(bad)
    with pytest.raises(ValueError):
        build_command("ANSWER\n")
