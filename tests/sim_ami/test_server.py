"""The simulator's AMI server over real TCP: actions, permissions, events, bad input."""

from __future__ import annotations

import hashlib

import pytest

from .process import start_server, stop_server
from .rawclient import RawAmi

INVALID = "Invalid/unknown command: {}. Use Action: ListCommands to show available commands."


@pytest.fixture
async def ami(ami_port: int):
    client = await RawAmi.connect(ami_port)
    yield client
    client.close()


async def _logged_in(port: int, **login: str) -> RawAmi:
    client = await RawAmi.connect(port)
    await client.login(**login)
    return client


async def test_action_id_is_echoed_only_when_sent(ami: RawAmi) -> None:
    await ami.login(events="off")
    reply = await ami.request(("Action", "Ping"))
    assert reply.names == ["Response", "Ping", "Timestamp"]
    reply = await ami.request(("Action", "Ping"), ("ActionID", "p-9"))
    assert reply.names == ["Response", "ActionID", "Ping", "Timestamp"]
    assert reply.get("ActionID") == "p-9"


async def test_before_login_only_login_challenge_and_logoff_run(ami: RawAmi) -> None:
    reply = await ami.request(("Action", "Ping"), ("ActionID", "1"))
    assert reply == [("Response", "Error"), ("ActionID", "1"), ("Message", "Permission denied")]
    reply = await ami.request(("Action", "Challenge"))
    assert reply == [("Response", "Error"), ("Message", "Must specify AuthType")]
    reply = await ami.request(("Action", "Logoff"))
    assert reply == [("Response", "Goodbye"), ("Message", "Thanks for all the fish.")]
    assert await ami.at_eof()


async def test_missing_and_unknown_actions(ami: RawAmi) -> None:
    await ami.login(events="off")
    reply = await ami.request(("ActionID", "m1"), ("Foo", "bar"))
    assert reply.get("Message") == "Missing action in request"
    reply = await ami.request(("Action", "FlyToTheMoon"))
    assert reply == [("Response", "Error"), ("Message", INVALID.format("FlyToTheMoon"))]
    reply = await ami.request(("Action", "ping"))  # action names are case-insensitive
    assert reply.get("Ping") == "Pong"


async def test_plain_login_with_events_gets_fully_booted_then_successful_auth(ami: RawAmi) -> None:
    await ami.login()
    booted = await ami.read()
    assert booted.names == ["Event", "Privilege", "Uptime", "LastReload", "Status"]
    assert booted.get("Privilege") == "system,all" and booted.get("Status") == "Fully Booted"
    auth = await ami.read()
    assert auth.names == ["Event", "Privilege", "EventTV", "Severity", "Service", "EventVersion",
                          "AccountID", "SessionID", "LocalAddress", "RemoteAddress",
                          "UsingPassword", "SessionTV"]
    assert auth.get("AccountID") == "hotline" and auth.get("Privilege") == "security,all"
    reply = await ami.request(("Action", "Login"), ("Username", "hotline"), ("Secret", "x"))
    assert reply.get("Message") == "Already authenticated"


async def test_md5_login_with_a_wrong_key_is_refused(ami: RawAmi) -> None:
    reply = await ami.request(("Action", "Challenge"), ("AuthType", "md5"))
    challenge = reply.get("Challenge")
    assert challenge.isdigit()
    again = await ami.request(("Action", "Challenge"), ("AuthType", "MD5"))
    assert again.get("Challenge") == challenge  # one challenge per session
    wrong = hashlib.md5((challenge + "nope").encode()).hexdigest()
    reply = await ami.request(("Action", "Login"), ("AuthType", "MD5"), ("Username", "hotline"),
                              ("Key", wrong))
    assert reply.get("Message") == "Authentication failed"
    assert await ami.at_eof()


async def test_write_permissions_are_enforced(ami_port: int) -> None:
    client = await _logged_in(ami_port, username="monitor", secret="watch", events="off")
    try:
        for action in ("Originate", "Getvar", "UserEvent", "CoreShowChannels"):
            reply = await client.request(("Action", action))
            assert reply.get("Message") == "Permission denied", action
        assert (await client.request(("Action", "Ping"))).get("Ping") == "Pong"
    finally:
        client.close()


async def test_events_are_filtered_by_read_permission_and_mask(ami_port: int) -> None:
    monitor = await _logged_in(ami_port, username="monitor", secret="watch")  # read=call
    quiet = await _logged_in(ami_port, username="noevents", secret="quiet", events="off")
    sender = await _logged_in(ami_port, events="off")
    try:
        reply = await quiet.request(("Action", "Events"), ("EventMask", "user"))
        assert reply == [("Response", "Success"), ("Events", "On")]
        await sender.request(("Action", "UserEvent"), ("UserEvent", "Hello"), ("Who", "张三丰"))
        await sender.request(("Action", "Originate"), ("Channel", "Local/s@callee-answers/n"),
                             ("Context", "vendor-offer"), ("Exten", "s"), ("Priority", "1"),
                             ("Async", "true"), ("ActionID", "o-f"), ("Variable", "ORDER_ID=1"))
        seen = await quiet.read()
        assert seen[:3] == [("Event", "UserEvent"), ("Privilege", "user,all"),
                            ("UserEvent", "Hello")]
        assert seen.get("Who") == "张三丰"
        names = []
        while "OriginateResponse" not in names:
            names.append((await monitor.read()).get("Event"))
        assert "SuccessfulAuth" not in names and "UserEvent" not in names  # security, user
        assert "VarSet" not in names  # dialplan
        assert "Newchannel" in names
        reply = await quiet.request(("Action", "Events"), ("EventMask", "off"))
        assert reply == [("Response", "Success"), ("Events", "Off")]
        reply = await quiet.request(("Action", "Events"), ("ActionID", "e"), ("EventMask", ""))
        assert reply.get("Message") == "Invalid event mask"
    finally:
        for client in (monitor, quiet, sender):
            client.close()


async def test_getvar_and_setvar(ami: RawAmi) -> None:
    await ami.login(events="off")
    reply = await ami.request(("Action", "Getvar"), ("Variable", "GREETING"))
    assert reply == [("Response", "Success"), ("Variable", "GREETING"), ("Value", "你好")]
    reply = await ami.request(("Action", "Setvar"), ("Variable", "MODE"), ("Value", "夜间"))
    assert reply == [("Response", "Success"), ("Message", "Variable Set")]
    reply = await ami.request(("Action", "Getvar"), ("Variable", "MODE"))
    assert reply.get("Value") == "夜间"
    reply = await ami.request(("Action", "Getvar"), ("Variable", "UNSET_THING"))
    assert reply.get("Value") == ""
    reply = await ami.request(("Action", "Getvar"), ("Channel", "PJSIP/nobody-1"),
                              ("Variable", "X"))
    assert reply.get("Message") == "No such channel"
    reply = await ami.request(("Action", "Setvar"), ("Value", "1"))
    assert reply.get("Message") == "No variable specified"


async def _answered_channel(client: RawAmi, action_id: str) -> str:
    await client.request(("Action", "Originate"), ("Channel", "Local/s@callee-answers/n"),
                         ("Context", "vendor-offer"), ("Exten", "s"), ("Priority", "1"),
                         ("Async", "yes"), ("ActionID", action_id),
                         ("CallerID", '"12349热线" <12349>'))
    done = await client.read_until(lambda m: m.get("Event") == "OriginateResponse")
    assert done.get("Response") == "Success"
    return done.get("Channel")


async def test_channels_list_variables_and_hangup(ami: RawAmi) -> None:
    await ami.login()
    channel = await _answered_channel(ami, "o-ch")
    await ami.send(("Action", "CoreShowChannels"), ("ActionID", "s1"))
    start = await ami.read_until(lambda m: m.get("ActionID") == "s1")
    assert start == [("Response", "Success"), ("ActionID", "s1"), ("EventList", "start"),
                     ("Message", "Channels will follow")]
    items = []
    while True:
        message = await ami.read_until(lambda m: m.get("ActionID") == "s1")
        if message.get("Event") == "CoreShowChannelsComplete":
            break
        items.append(message)
    assert message.names == ["Event", "ActionID", "EventList", "ListItems"]
    assert int(message.get("ListItems")) == len(items) >= 1
    mine = next(item for item in items if item.get("Channel") == channel)
    assert mine.names[:3] == ["Event", "ActionID", "Channel"]
    assert mine.names[-4:] == ["Application", "ApplicationData", "Duration", "BridgeId"]
    assert mine.get("CallerIDName") == "12349热线"
    reply = await ami.request(("Action", "Setvar"), ("Channel", channel), ("Variable", "X"),
                              ("Value", "7"))
    assert reply.get("Message") == "Variable Set"
    reply = await ami.request(("Action", "Getvar"), ("Channel", channel), ("Variable", "X"))
    assert reply.get("Value") == "7"
    reply = await ami.request(("Action", "Hangup"), ("Channel", channel), ("Cause", "16"))
    assert reply == [("Response", "Success"), ("Message", "Channel Hungup")]
    # As in outbound_answered.ami.txt, the ;2 half of the Local pair ends first.
    hangup = await ami.read_until(
        lambda m: m.get("Event") == "Hangup" and m.get("Channel") == channel
    )
    assert hangup.get("Cause") == "16"
    reply = await ami.request(("Action", "Hangup"), ("Channel", channel))
    assert reply.get("Message") == "No such channel"
    reply = await ami.request(("Action", "Hangup"))
    assert reply.get("Message") == "No channel specified"


async def test_hangup_by_regex_lists_the_channels(ami: RawAmi) -> None:
    await ami.login()
    channel = await _answered_channel(ami, "o-rx")
    await ami.send(("Action", "Hangup"), ("Channel", f"/^{channel}$/"),
                   ("ActionID", "h"))
    start = await ami.read_until(lambda m: m.get("ActionID") == "h")
    assert start.get("EventList") == "start"
    hung = await ami.read_until(lambda m: m.get("ActionID") == "h")
    assert hung.get("Event") == "ChannelHungup" and hung.get("Channel") == channel
    end = await ami.read_until(lambda m: m.get("ActionID") == "h")
    assert end.get("Event") == "ChannelsHungupListComplete" and end.get("ListItems") == "1"


@pytest.mark.parametrize(("headers", "message"), [
    ([], "Channel not specified"),
    ([("Channel", "nonsense")], "Invalid channel"),
    ([("Channel", "Local/s@x/n"), ("Priority", "first")], "Invalid priority"),
    ([("Channel", "Local/s@x/n"), ("Priority", "1"), ("Timeout", "soon")], "Invalid timeout"),
    ([("Channel", "Local/s@x/n"), ("Exten", "s")],
     "Originate with 'Exten' requires 'Context' and 'Priority'"),
])
async def test_originate_validation(ami: RawAmi, headers, message: str) -> None:
    await ami.login(events="off")
    reply = await ami.request(("Action", "Originate"), ("ActionID", "v"), *headers)
    assert reply == [("Response", "Error"), ("ActionID", "v"), ("Message", message)]


async def test_sync_originate_answers_after_the_outcome(ami: RawAmi) -> None:
    await ami.login(events="off")
    common = [("Context", "vendor-offer"), ("Exten", "s"), ("Priority", "1")]
    reply = await ami.request(("Action", "Originate"), ("Channel", "Local/s@callee-answers/n"),
                              *common)
    assert reply == [("Response", "Success"), ("Message", "Originate successfully queued")]
    reply = await ami.request(("Action", "Originate"), ("Channel", "Local/s@callee-busy/n"),
                              *common)
    assert reply == [("Response", "Error"), ("Message", "Originate failed")]


async def test_async_originate_without_context_reports_failure(ami: RawAmi) -> None:
    await ami.login()
    reply = await ami.request(("Action", "Originate"), ("Channel", "Local/s@callee-answers/n"),
                              ("Async", "true"), ("ActionID", "nc"))
    assert reply.get("Message") == "Originate successfully queued"
    done = await ami.read_until(lambda m: m.get("Event") == "OriginateResponse")
    assert (done.get("Response"), done.get("Reason"), done.get("Uniqueid")) == (
        "Failure", "0", "<unknown>")


async def test_userevent_copies_the_other_lines_verbatim(ami: RawAmi) -> None:
    await ami.login()
    await ami.send_raw(b"Action: UserEvent\r\nUserEvent: Order\r\nActionID: u1\r\n"
                       b"Raw:no-space\r\nName: \xe5\xbc\xa0\r\n\r\n")
    reply = await ami.read_until(lambda m: m.get("Response") != "")
    assert reply == [("Response", "Success"), ("ActionID", "u1"), ("Message", "Event Sent")]
    event = await ami.read_until(lambda m: m.get("Event") == "UserEvent")
    assert event == [("Event", "UserEvent"), ("Privilege", "user,all"), ("UserEvent", "Order"),
                     ("ActionID", "u1"), ("Raw:no-space", ""), ("Name", "张")]


async def test_malformed_input_gets_asterisk_errors_and_the_session_survives(ami: RawAmi) -> None:
    await ami.login(events="off")
    await ami.send_raw(b"Action: Ping\r\nActionID: long\r\nX: " + b"a" * 3000 + b"\r\n\r\n")
    reply = await ami.read()
    assert reply == [("Response", "Error"), ("ActionID", "long"),
                     ("Message", "Failed to parse message: line too long")]
    await ami.send_raw(b"Action: Ping\r\nActionID: many\r\n" + b"X: 1\r\n" * 200 + b"\r\n")
    reply = await ami.read_until(lambda m: m.get("ActionID") == "many")
    assert reply.get("Message") == "Too many lines in message or allocation failure"
    await ami.send_raw(b"\xff\xfe\x00garbage\x01\x02 \xc3\x28\r\nAction: P\xe9ng\r\n\r\n")
    reply = await ami.read_until(lambda m: m.get("Response") == "Error")
    assert reply.get("Message").startswith("Invalid/unknown command: P\ufffdng.")
    await ami.send_raw(bytes(range(256)) * 400)  # binary flood without a blank line
    await ami.send_raw(b"\r\n\r\nAction: Ping\r\nActionID: alive\r\n\r\n")
    reply = await ami.read_until(lambda m: m.get("ActionID") == "alive")
    assert reply.get("Ping") == "Pong"


async def test_client_that_never_logs_in_is_dropped() -> None:
    proc, port = start_server("--auth-timeout", "0.3")
    try:
        client = await RawAmi.connect(port)
        await client.send(("Action", "Ping"))
        assert (await client.read()).get("Message") == "Permission denied"
        assert await client.at_eof(timeout=5)
    finally:
        assert "Traceback" not in stop_server(proc)


async def test_peer_that_vanishes_mid_message_does_not_disturb_others(ami_port: int) -> None:
    half = await RawAmi.connect(ami_port)
    await half.send_raw(b"Action: Login\r\nUsername: hot")
    half.writer.transport.abort()
    other = await _logged_in(ami_port, events="off")
    try:
        assert (await other.request(("Action", "Ping"))).get("Ping") == "Pong"
    finally:
        other.close()


async def test_sync_originate_blocks_the_session_like_asterisk(ami: RawAmi) -> None:
    await ami.login(events="off")
    await ami.send_raw(
        b"Action: Originate\r\nActionID: slow\r\nChannel: Local/s@callee-answers/n\r\n"
        b"Context: vendor-offer\r\nExten: s\r\nPriority: talk\r\n\r\n"
        b"Action: Ping\r\nActionID: after\r\n\r\n"
    )
    first, second = await ami.read(), await ami.read()
    assert first == [("Response", "Success"), ("ActionID", "slow"),
                     ("Message", "Originate successfully queued")]
    assert second.get("ActionID") == "after" and second.get("Ping") == "Pong"
    reply = await ami.request(("Action", "Originate"), ("Channel", "Local/s@callee-answers/n"),
                              ("Context", "vendor-offer"), ("Exten", "s"), ("Priority", "9"))
    assert reply.get("Message") == "Extension does not exist."
    reply = await ami.request(("Action", "Originate"), ("Channel", "Local/s@callee-answers/n"),
                              ("Context", "vendor-offer"), ("Exten", "s"), ("Priority", "nope"))
    assert reply.get("Message") == "Invalid priority"


async def test_redirect_refuses_missing_channels_as_asterisk_does(ami: RawAmi) -> None:
    await ami.login()
    chan = await _answered_channel(ami, "r-1")
    target = (("Context", "vendor-offer"), ("Exten", "s"), ("Priority", "1"))
    reply = await ami.request(("Action", "Redirect"), ("Channel", "PJSIP/nobody-1"), *target)
    assert reply.get("Message") == "Channel does not exist: PJSIP/nobody-1"
    reply = await ami.request(("Action", "Redirect"), ("Channel", chan),
                              ("ExtraChannel", "PJSIP/nobody-2"), *target,
                              ("ExtraContext", "vendor-offer"), ("ExtraExten", "s"),
                              ("ExtraPriority", "1"))
    assert reply.get("Message") == "ExtraChannel does not exist: PJSIP/nobody-2"
    reply = await ami.request(("Action", "Redirect"), ("Channel", chan), *target)
    assert reply.get("Message") == "Redirect successful"
