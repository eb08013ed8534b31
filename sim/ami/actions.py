"""Action table and dispatch, following process_message() in Asterisk's manager.c.

Each action carries the write classes Asterisk 22 registers it with (an action needing several
classes runs for a user with ANY of them; 0 = anyone logged in) and its synopsis, as
ListCommands prints them. Sources (Asterisk 22.10.1): main/manager.c
(ast_manager_register_xml_core in __init_manager, synopses in main/manager_doc.xml),
main/pbx.c (ShowDialPlan), apps/app_queue.c (QueueStatus).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import Deferred

from . import auth, channel_actions, info_actions, originate, redirect
from .framing import Request
from .perms import CLASSES, authority_to_str
from .session import AmiSession
from .wire import action_id, encode, error

# A handler may return a Deferred: the session then waits for it (a synchronous Originate).
Handler = Callable[[AmiSession, Request], Deferred | None]

_SYSTEM, _CALL, _CONFIG = CLASSES["system"], CLASSES["call"], CLASSES["config"]
_REPORTING, _USER, _ORIGINATE = CLASSES["reporting"], CLASSES["user"], CLASSES["originate"]


@dataclass(frozen=True)
class Action:
    name: str  # as registered (ListCommands prints it so)
    authority: int  # write classes allowed to run it; 0 = anyone logged in
    synopsis: str
    handler: Handler


def action_listcommands(session: AmiSession, request: Request) -> None:
    """action_listcommands(): one response, a ``Name: synopsis (Priv: classes)`` line for
    every action the user may run (authority 0 included), in alphabetical order."""
    lines = [(f"{a.name}: {a.synopsis} (Priv: {authority_to_str(a.authority)})", None)
             for a in sorted(ACTIONS.values(), key=lambda a: a.name.lower())
             if a.authority == 0 or session.writeperm & a.authority]
    session.send(encode([("Response", "Success"), *action_id(request), *lines]))


_TABLE = [
    Action("Ping", 0, "Keepalive command.", auth.action_ping),
    Action("Events", 0, "Control Event Flow.", auth.action_events),
    Action("Logoff", 0, "Logoff Manager.", auth.action_logoff),
    Action("Login", 0, "Login Manager.", auth.action_login),
    Action("Challenge", 0, "Generate Challenge for MD5 Auth.", auth.action_challenge),
    Action("Hangup", _SYSTEM | _CALL, "Hangup channel.", channel_actions.action_hangup),
    Action("Setvar", _CALL, "Sets a channel variable or function value.",
           channel_actions.action_setvar),
    Action("Getvar", _CALL | _REPORTING, "Gets a channel variable or function value.",
           channel_actions.action_getvar),
    Action("Redirect", _CALL, "Redirect (transfer) a call.", redirect.action_redirect),
    Action("Originate", _ORIGINATE, "Originate a call.", originate.action_originate),
    Action("ListCommands", 0, "List available manager commands.", action_listcommands),
    Action("UserEvent", _USER, "Send an arbitrary event.", channel_actions.action_userevent),
    Action("CoreShowChannels", _SYSTEM | _REPORTING, "List currently active channels.",
           channel_actions.action_coreshowchannels),
    Action("ShowDialPlan", _CONFIG | _REPORTING, "Show dialplan contexts and extensions",
           info_actions.action_showdialplan),
    Action("QueueStatus", 0, "Show queue status.", info_actions.action_queuestatus),
]
ACTIONS: dict[str, Action] = {action.name.lower(): action for action in _TABLE}
_BEFORE_LOGIN = {"login", "logoff", "challenge"}


def dispatch(session: AmiSession, request: Request) -> Deferred | None:
    """Run one request: parse errors, login gate, lookup, write permission, handler."""
    if request.error:
        session.send(error(request, request.error))
        return
    name = request.get_nonempty("Action")
    if not name:
        session.send(error(request, "Missing action in request"))
        return
    key = name.lower()
    if not session.authenticated and key not in _BEFORE_LOGIN:
        session.send(error(request, "Permission denied"))
        return
    action = ACTIONS.get(key)
    if action is None:
        session.send(error(request, f"Invalid/unknown command: {name}. "
                                    "Use Action: ListCommands to show available commands."))
        return
    if action.authority and not session.writeperm & action.authority:
        session.send(error(request, "Permission denied"))
        return
    return action.handler(session, request)
