"""Order pages: search, the order with its whole timeline, orders entered by hand, the
escalated list with assign and cancel, and an alarm's disposition and bridges.

Every read goes through ``dispatch.console_queries`` (region-scoped); every change through
the services the command line uses (``close_alarm``, ``bridge_once``) or ``order_desk``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dispatch.accounts import Account
from dispatch.audit import audit_row, record
from dispatch.console_queries import (
    escalated_orders,
    order_exists,
    order_view,
    search_elders,
    search_orders,
    vendors_for,
    visible_order,
)
from dispatch.dispositions import Disposition, DispositionError, close_alarm
from dispatch.models import OrderStatus, ServiceType
from dispatch.order_desk import HAND_SERVICES, DeskError, assign_by_hand, cancel_order, enter_order
from dispatch.profile import elder_phones, family_contacts
from ivr.bridging import BridgeError, bridge_once
from ivr.click_to_call import CallBackError, call_back_once
from ivr.console.auth import current_account, require
from ivr.console.call_back import call_back_blocked
from ivr.console.forms import FormError, choice, integer, read_form, text
from ivr.console.state import actor, console_state
from ivr.console.templating import bad_request, flash, not_found, render

BRIDGE_TARGETS = ("120", "110", "119")
UNIQUEID_CHARS = frozenset("0123456789.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-")


Change = Callable[[FormData, str], Awaitable[str]]


def _account(request: Request) -> Account:
    account = current_account(request)
    assert account is not None
    return account


@require()
async def search(request: Request) -> Response:
    state = console_state(request)
    query = request.query_params.get("q", "")[:64]
    async with state.sessions() as db:
        rows = await search_orders(db, _account(request).scope, query,
                                   state.settings.ivr.local_area_code)
    return render(request, "orders.html", {"q": query, "rows": rows})


@require()
async def escalated(request: Request) -> Response:
    state = console_state(request)
    async with state.sessions() as db:
        rows = await escalated_orders(db, _account(request).scope)
    return render(request, "escalated.html", {"rows": rows})


@require()
async def order_page(request: Request) -> Response:
    state = console_state(request)
    order_no = request.path_params["order_no"]
    async with state.sessions() as db:
        view = await order_view(db, _account(request).scope, order_no)
        if view is not None:
            vendors = (await vendors_for(db, view.elder.county_code)
                       if view.order.status is OrderStatus.ESCALATED else [])
            family = await family_contacts(db, view.elder.id)
            phones = await elder_phones(db, view.elder.id)
    if view is None:
        return await _refused(request, order_no)
    return render(request, "order.html", {
        "phones": phones, "call_back_blocked": call_back_blocked(request),
        "view": view, "vendors": vendors, "dispositions": list(Disposition),
        "bridge_targets": BRIDGE_TARGETS, "family": family, "ami": state.settings.ami.enabled,
        "open_emergency": view.order.service is ServiceType.EMERGENCY
        and view.order.status not in (OrderStatus.COMPLETED, OrderStatus.CANCELLED)})


async def _refused(request: Request, order_no: str) -> Response:
    """404 for an order outside the region or unknown; the attempt is audited."""
    state = console_state(request)
    async with state.sessions() as db:
        elsewhere = await order_exists(db, order_no)
        await record(db, actor(request), "order_refused", state.now(), order_no[:64],
                     {"exists_elsewhere": elsewhere})
    return not_found(request, f"No order {order_no[:64]} in your region.")


@require()
async def new_order_page(request: Request) -> Response:
    state = console_state(request)
    query = request.query_params.get("q", "")[:64]
    call = _uniqueid(request.query_params.get("call"))
    async with state.sessions() as db:
        elders = await search_elders(db, _account(request).scope, query,
                                     state.settings.ivr.local_area_code)
    return render(request, "order_new.html", {"q": query, "elders": elders, "call": call,
                                              "services": HAND_SERVICES})


def _uniqueid(value: str | None) -> str | None:
    if value and len(value) <= 64 and set(value) <= UNIQUEID_CHARS:
        return value
    return None


@require()
async def new_order(request: Request) -> Response:
    state = console_state(request)
    try:
        form = await read_form(request)
        elder_id = integer(form, "elder_id")
        service = choice(form, "service", HAND_SERVICES)
        note = text(form, "note", 500, required=False, multiline=True)
        call = text(form, "call", 64, required=False)
        if call is not None and _uniqueid(call) is None:
            raise FormError("call: not a call id")
        async with state.sessions() as db:
            order = await enter_order(db, _account(request).scope, actor(request), elder_id,
                                      service, note, call, state.now())
    except (FormError, DeskError) as exc:
        return bad_request(request, str(exc))
    flash(request, "ok", f"Order {order.order_no} entered; it is being offered to vendors.")
    return RedirectResponse(f"/orders/{order.order_no}", 303)


async def _order_change(request: Request, change: Change) -> Response:
    """Run ``change(form, order_no)`` on a visible order; back to its page with the result."""
    state = console_state(request)
    order_no = request.path_params["order_no"]
    async with state.sessions() as db:
        visible = await visible_order(db, _account(request).scope, order_no) is not None
    if not visible:
        return await _refused(request, order_no)
    try:
        form = await read_form(request)
        message = await change(form, order_no)
    except (FormError, DeskError, DispositionError, BridgeError, CallBackError) as exc:
        flash(request, "error", str(exc))
    else:
        flash(request, "ok", message)
    return RedirectResponse(f"/orders/{order_no}", 303)


@require()
async def assign(request: Request) -> Response:
    state = console_state(request)

    async def change(form: FormData, order_no: str) -> str:
        vendor_id = integer(form, "vendor_id")
        async with state.sessions() as db:
            await assign_by_hand(db, _account(request).scope, actor(request), order_no,
                                 vendor_id, state.now(),
                                 state.settings.dispatch.arrival_window_s)
        return f"Order {order_no} assigned to the vendor."

    return await _order_change(request, change)


@require()
async def cancel(request: Request) -> Response:
    state = console_state(request)

    async def change(form: FormData, order_no: str) -> str:
        reason = text(form, "reason", 200) or ""
        async with state.sessions() as db:
            await cancel_order(db, _account(request).scope, actor(request), order_no, reason,
                               state.now())
        return f"Order {order_no} cancelled."

    return await _order_change(request, change)


@require()
async def close(request: Request) -> Response:
    state = console_state(request)

    async def change(form: FormData, order_no: str) -> str:
        disposition = choice(form, "disposition", list(Disposition))
        note = text(form, "note", 500, required=False)
        who, at = actor(request), state.now()
        async with state.sessions() as db:
            audit = audit_row(who, "alarm_closed", at, order_no,
                              {"disposition": disposition.value})
            await close_alarm(db, order_no, disposition, who.name, at, note or "",
                              also=[audit])
        return f"Order {order_no} closed as {disposition.value}."

    return await _order_change(request, change)


@require()
async def bridge(request: Request) -> Response:
    state = console_state(request)

    async def change(form: FormData, order_no: str) -> str:
        target = text(form, "target", 12) or ""
        if target not in BRIDGE_TARGETS and not target.startswith("family:"):
            raise FormError("target: 120, 110, 119 or a family member")
        if not state.settings.ami.enabled:
            raise BridgeError("bridging needs AMI, and the console's configuration has "
                              "ami.enabled = false")
        who, at = actor(request), state.now()
        try:
            outcome = await bridge_once(state.settings, order_no, target, state.sessions)
        except BridgeError as exc:
            async with state.sessions() as db:
                await record(db, who, "bridge", at, order_no, {"target": target,
                                                                 "error": str(exc)})
            raise
        async with state.sessions() as db:
            await record(db, who, "bridge", at, order_no, {"target": target,
                                                         "outcome": outcome.outcome})
        return f"Bridge to {target}: {outcome.outcome}."

    return await _order_change(request, change)


@require()
async def call_back(request: Request) -> Response:
    """Ring the account's own seat, then the order's elder on the chosen phone."""
    state = console_state(request)

    async def change(form: FormData, order_no: str) -> str:
        number = text(form, "number", 24) or ""
        blocked = call_back_blocked(request)
        if blocked is not None:
            raise CallBackError(blocked)
        async with state.sessions() as db:
            view = await visible_order(db, _account(request).scope, order_no)
            phones = [n for n, _ in await elder_phones(db, view.elder_id)] if view else []
        if number not in phones:
            raise FormError("number: not one of this order's elder's phones")
        placed = await call_back_once(state.settings, actor(request), _account(request).seat,
                                      number, order_no, state.sessions)
        if placed.outcome == "rung":
            return f"Your seat {placed.seat} answered: calling {placed.number}."
        raise CallBackError(f"Call-back to {placed.number}: {placed.outcome}"
                            + (f" ({placed.error})" if placed.error else f" ({placed.status})"))

    return await _order_change(request, change)


ROUTES = [
    Route("/orders", search, methods=["GET"]),
    Route("/orders/escalated", escalated, methods=["GET"]),
    Route("/orders/new", new_order_page, methods=["GET"]),
    Route("/orders/new", new_order, methods=["POST"]),
    Route("/orders/{order_no}", order_page, methods=["GET"]),
    Route("/orders/{order_no}/assign", assign, methods=["POST"]),
    Route("/orders/{order_no}/cancel", cancel, methods=["POST"]),
    Route("/orders/{order_no}/close", close, methods=["POST"]),
    Route("/orders/{order_no}/bridge", bridge, methods=["POST"]),
    Route("/orders/{order_no}/call-back", call_back, methods=["POST"]),
]
