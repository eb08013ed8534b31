"""Action table and dispatch, following process_message() in Asterisk's manager.c."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet.defer import Deferred

from . import auth, channel_actions, originate, redirect
from .framing import Request
from .perms import CLASSES
from .session import AmiSession
from .wire import error

# A handler may return a Deferred: the session then waits for it (a synchronous Originate).
Handler = Callable[[AmiSession, Request], Deferred | None]

_SYSTEM, _CALL = CLASSES["system"], CLASSES["call"]
_REPORTING, _USER, _ORIGINATE = CLASSES["reporting"], CLASSES["user"], CLASSES["originate"]


@dataclass(frozen=True)
class Action:
    authority: int  # write classes allowed to run it; 0 = anyone logged in
    handler: Handler


ACTIONS: dict[str, Action] = {
    "ping": Action(0, auth.action_ping),
    "events": Action(0, auth.action_events),
    "logoff": Action(0, auth.action_logoff),
    "login": Action(0, auth.action_login),
    "challenge": Action(0, auth.action_challenge),
    "hangup": Action(_SYSTEM | _CALL, channel_actions.action_hangup),
    "setvar": Action(_CALL, channel_actions.action_setvar),
    "getvar": Action(_CALL | _REPORTING, channel_actions.action_getvar),
    "originate": Action(_ORIGINATE, originate.action_originate),
    "redirect": Action(_CALL, redirect.action_redirect),
    "userevent": Action(_USER, channel_actions.action_userevent),
    "coreshowchannels": Action(_SYSTEM | _REPORTING, channel_actions.action_coreshowchannels),
}
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
