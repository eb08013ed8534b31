"""Formatting of AMI responses and events, byte for byte as Asterisk writes them."""

from __future__ import annotations

from collections.abc import Iterable

from .framing import Request

Pairs = Iterable[tuple[str, str | None]]


def _clean(value: object) -> str:
    # A CR or LF from simulator data must not break the framing of what we send.
    return str(value).replace("\r", " ").replace("\n", " ")


def encode(pairs: Pairs) -> bytes:
    """``Name: value`` lines ended by CR LF, then the blank line.

    A pair whose value is None is a raw line, sent as it was received.
    """
    text = "".join(
        f"{_clean(name)}\r\n" if value is None else f"{name}: {_clean(value)}\r\n"
        for name, value in pairs
    )
    return (text + "\r\n").encode("utf-8", errors="replace")


def action_id(request: Request) -> list[tuple[str, str]]:
    """The ActionID header to echo: only when the request had a non-empty one."""
    value = request.get("ActionID")
    return [("ActionID", value)] if value else []


def response(request: Request, status: str, message: str | None = None, *,
             list_flag: str | None = None, extra: Pairs = ()) -> bytes:
    """astman_send_response_full(): Response, ActionID, EventList, Message, then ``extra``."""
    pairs: list[tuple[str, str]] = [("Response", status), *action_id(request)]
    if list_flag:
        pairs.append(("EventList", list_flag))
    if message is not None:
        pairs.append(("Message", message))
    pairs.extend(extra)
    return encode(pairs)


def error(request: Request, message: str) -> bytes:
    return response(request, "Error", message)


def ack(request: Request, message: str) -> bytes:
    return response(request, "Success", message)


def list_complete(request: Request, event: str, count: int) -> bytes:
    """The closing event of an event list."""
    return encode([("Event", event), *action_id(request), ("EventList", "Complete"),
                   ("ListItems", str(count))])
