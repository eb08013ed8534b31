"""Call back from the live screen: a worklist caller (by their ended call) or the elder of a
screen-pop card (one of their phones), through the click-to-call service.

The order page's own button is in ``orders.py``; both ring the account's own seat first.
Every read is region-scoped; a call or elder outside the region is refused with 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatch.accounts import Account
from dispatch.console_queries import visible_call_caller, visible_elder, visible_order
from dispatch.orders import latest_order_of_call
from dispatch.profile import elder_phones
from ivr.click_to_call import CallBackError, blocked_reason, call_back_once
from ivr.console.auth import current_account, require
from ivr.console.forms import FormError, integer, read_form, text
from ivr.console.state import actor, console_state

UNIQUEID_CHARS = frozenset("0123456789.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-")


def _account(request: Request) -> Account:
    account = current_account(request)
    assert account is not None  # the endpoints are guarded
    return account


def call_back_blocked(request: Request) -> str | None:
    """Why this account cannot call back from its seat, or None when it can."""
    return blocked_reason(_account(request).seat, console_state(request).settings.ami.enabled)


def _refusal(message: str, status: int = 400) -> Response:
    return JSONResponse({"ok": False, "error": message}, status)


async def _target(request: Request) -> tuple[str, str | None] | None:
    """(number, order number or None) from the form's ``call`` (a worklist caller) or
    ``elder_id`` + ``number`` (+ ``order_no``, a card's); None when outside the region."""
    state, scope = console_state(request), _account(request).scope
    form = await read_form(request)
    call = text(form, "call", 64, required=False)
    async with state.sessions() as db:
        if call is not None:
            if not set(call) <= UNIQUEID_CHARS:
                raise FormError("call: not a call id")
            number = await visible_call_caller(db, scope, call)
            if number is None:
                return None
            order = await latest_order_of_call(db, call)
            order_no = order.order_no if order and await visible_order(
                db, scope, order.order_no or "") else None
            return number, order_no
        elder_id = integer(form, "elder_id")
        number = text(form, "number", 24) or ""
        order_no = text(form, "order_no", 16, required=False)
        if await visible_elder(db, scope, elder_id) is None:
            return None
        if number not in [n for n, _ in await elder_phones(db, elder_id)]:
            raise FormError("number: not one of this elder's phones")
        if order_no is not None:
            order = await visible_order(db, scope, order_no)
            if order is None or order.elder_id != elder_id:
                return None
        return number, order_no


@require()
async def live_call_back(request: Request) -> Response:
    """Ring the account's seat, then the caller; JSON {ok, message} or {ok: false, error}."""
    state = console_state(request)
    blocked = call_back_blocked(request)
    if blocked is not None:
        return _refusal(blocked, 409)
    try:
        target = await _target(request)
    except FormError as exc:
        return _refusal(str(exc))
    if target is None:
        return _refusal("No such call or elder in your region.", 404)
    number, order_no = target
    try:
        placed = await call_back_once(state.settings, actor(request), _account(request).seat,
                                      number, order_no, state.sessions)
    except CallBackError as exc:
        return _refusal(str(exc))
    if placed.outcome != "rung":
        return _refusal(f"Call-back to {placed.number}: {placed.outcome} "
                        f"({placed.error or placed.status})", 502)
    return JSONResponse({"ok": True, "message": f"Your seat {placed.seat} answered: "
                                                f"calling {placed.number}."})


ROUTES = [Route("/calls/call-back", live_call_back, methods=["POST"])]
