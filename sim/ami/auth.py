"""Login, Challenge, Logoff and Events: the session-level actions."""

from __future__ import annotations

import hashlib
import random

from .events import fully_booted, successful_auth
from .framing import Request
from .perms import CLASSES, strings_to_mask
from .session import AmiSession
from .wire import ack, action_id, encode, error, response


def _address(session: AmiSession, peer: bool) -> tuple[str, int]:
    address = session.transport.getPeer() if peer else session.transport.getHost()
    return str(getattr(address, "host", "")), int(getattr(address, "port", 0))


def _md5_ok(session: AmiSession, request: Request, secret: str) -> bool:
    key = request.get("Key")
    if not key or not session.challenge:
        return False
    digest = hashlib.md5((session.challenge + secret).encode(), usedforsecurity=False)
    return digest.hexdigest() == key


def _authenticate(session: AmiSession, request: Request) -> bool:
    """authenticate(): look up the user (case-insensitive), check Key or Secret."""
    username = request.get("Username")
    if not username:
        return False
    user = session.factory.find_user(username)
    if user is None:
        return False
    if request.get("AuthType").lower() == "md5":
        ok = _md5_ok(session, request, user.secret)
    else:
        ok = request.get("Secret") == user.secret
    if not ok:
        return False
    session.logged_in(user, username)
    events = request.get("Events")
    if events:
        set_eventmask(session, events)
    else:
        session.send_events = session.readperm
    return True


def set_eventmask(session: AmiSession, text: str) -> int:
    mask = strings_to_mask(text)
    if mask >= 0:
        session.send_events = session.readperm & mask
    return mask


def action_login(session: AmiSession, request: Request) -> None:
    if session.authenticated:
        session.send(ack(request, "Already authenticated"))
        return
    if not _authenticate(session, request):
        # Asterisk sleeps 1 s, answers, and drops the session; input meanwhile is ignored.
        session.closing = True
        session.factory.reactor.callLater(
            session.factory.failed_login_delay,
            session.close, error(request, "Authentication failed"),
        )
        return
    session.send(ack(request, "Authentication accepted"))
    factory = session.factory
    if session.send_events & CLASSES["system"]:
        event = fully_booted(int(factory.now() - factory.started))
        session.send(event.to_bytes())
    factory.broadcast(successful_auth(
        account=session.username, session_id=session.session_id,
        local=_address(session, peer=False), remote=_address(session, peer=True),
        now=factory.now(), session_start=session.started,
    ))


def action_challenge(session: AmiSession, request: Request) -> None:
    if request.get("AuthType").lower() != "md5":
        session.send(error(request, "Must specify AuthType"))
        return
    if not session.challenge:
        session.challenge = str(random.randrange(0, 2**31))
    session.send(response(request, "Success", extra=[("Challenge", session.challenge)]))


def action_logoff(session: AmiSession, request: Request) -> None:
    session.close(after=response(request, "Goodbye", "Thanks for all the fish."))


def action_events(session: AmiSession, request: Request) -> None:
    mask = set_eventmask(session, request.get("EventMask"))
    if mask < 0:
        session.send(error(request, "Invalid event mask"))
        return
    state = "On" if mask > 0 else "Off"
    session.send(encode([("Response", "Success"), *action_id(request), ("Events", state)]))


def action_ping(session: AmiSession, request: Request) -> None:
    now = session.factory.now()
    session.send(encode([("Response", "Success"), *action_id(request), ("Ping", "Pong"),
                         ("Timestamp", f"{now:.6f}")]))
