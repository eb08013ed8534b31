"""AMI login: MD5 challenge/response (the secret never crosses the wire) or plain."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .errors import AmiAuthError

Send = Callable[[Mapping[str, str]], Awaitable[Any]]


def md5_key(challenge: str, secret: str) -> str:
    """The ``Key`` Asterisk expects: hex MD5 of the challenge followed by the secret."""
    return hashlib.md5((challenge + secret).encode(), usedforsecurity=False).hexdigest()


async def login(send: Send, *, username: str, secret: str, auth: str, events: str = "on") -> None:
    """Log in on a fresh connection; raise AmiAuthError if Asterisk refuses."""
    if auth == "md5":
        reply = await send({"Action": "Challenge", "AuthType": "MD5"})
        challenge = reply.get("Challenge", "") if _ok(reply) else ""
        if not challenge:
            raise AmiAuthError(f"Asterisk gave no MD5 challenge: {_text(reply)}")
        fields = {"Action": "Login", "AuthType": "MD5", "Username": username,
                  "Key": md5_key(challenge, secret), "Events": events}
    elif auth == "plain":
        fields = {"Action": "Login", "Username": username, "Secret": secret, "Events": events}
    else:
        raise ValueError(f"unknown AMI auth method {auth!r} (md5 or plain)")
    reply = await send(fields)
    if not _ok(reply):
        raise AmiAuthError(f"AMI login as {username!r} refused: {_text(reply)}")


def _ok(reply: Any) -> bool:
    return getattr(reply, "response", None) == "Success"


def _text(reply: Any) -> str:
    return getattr(reply, "message", "") or repr(reply)
