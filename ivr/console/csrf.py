"""CSRF protection and a body size limit for every state-changing request.

A random token lives in the signed session; every POST (PUT, PATCH, DELETE) must carry it,
as the ``csrf_token`` field of a url-encoded form or in the ``X-CSRF-Token`` header, or it
is refused with 403 before any route runs. Bodies over the limit are refused with 413.
Only url-encoded forms are accepted on state-changing requests (the console has no upload).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import parse_qs

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_KEY = "csrf"
FIELD = "csrf_token"
HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPE = "application/x-www-form-urlencoded"


def session_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, created on first use."""
    token = session.get(TOKEN_KEY)
    if not isinstance(token, str):
        token = session[TOKEN_KEY] = secrets.token_urlsafe(32)
    return token


class CsrfMiddleware:
    """Refuses unsafe requests without the session's token, or with too large a body.

    Runs inside the session middleware (it reads ``scope["session"]``)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        body = await self._body(receive)
        if body is None:
            await PlainTextResponse("request too large", 413)(scope, receive, send)
            return
        expected = scope["session"].get(TOKEN_KEY)
        given = headers.get(HEADER, b"").decode("latin-1") or self._form_token(headers, body)
        if not isinstance(expected, str) or not hmac.compare_digest(given, expected):
            await PlainTextResponse(
                "refused: the form's security token is missing or stale; reload the page",
                403)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _form_token(headers: dict[bytes, bytes], body: bytes) -> str:
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0]
        if content_type.strip().lower() != FORM_TYPE:
            return ""
        try:
            values = parse_qs(body.decode("utf-8"), max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            return ""
        tokens = values.get(FIELD, [])
        return tokens[0] if len(tokens) == 1 else ""


def _replay(body: bytes, receive_more: Receive) -> Receive:
    """The buffered body once, then the client's own messages (its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive_more()

    return receive
