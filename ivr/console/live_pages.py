"""The console's live side: the operator's screen (screen pops and the worklist), its event
stream, the worklist's actions, and the supervisor's wallboard.

``live_parts(settings)`` gives the routes, templates folder and lifespan to pass to
``create_app``; the lifespan opens the console's Redis client and starts the one
:class:`~ivr.console.live_feed.LiveFeed` of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from dispatch.account_store import account_by_id
from dispatch.accounts import Account, Role
from dispatch.alarm_acks import acknowledge_alarm
from dispatch.audit import audit_row, record
from dispatch.console_events import ConsoleEventName
from dispatch.console_queries import order_exists, visible_order
from dispatch.dispositions import Disposition, DispositionError, close_alarm
from dispatch.orders import is_valid_order_no
from dispatch.regions import Place, RegionScope
from dispatch.wallboard import ANSWER_TARGETS, wallboard_figures
from dispatch.worklist import worklist
from ivr.acks import Acknowledgements
from ivr.config import Settings
from ivr.console.auth import current_account, require
from ivr.console.call_back import call_back_blocked
from ivr.console.forms import FormError, choice, read_form, text
from ivr.console.live_feed import (
    HEARTBEAT_S,
    FeedStatus,
    LiveEvent,
    LiveFeed,
    is_stream_id,
    place_visible,
    stream_id_key,
)
from ivr.console.state import ConsoleState, actor, console_state
from ivr.console.templating import render
from ivr.pop_delivery import OpenScreens, is_uniqueid, seen_key
from ivr.queue_members import operator_counts
from ivr.storage_steps import STORAGE_ERRORS, describe

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "live_templates"
POP_REPLAY_S = 600  # a page opened now shows the screen pops of the last ten minutes
WORKLIST_WINDOW_S = 24 * 3600
WORKLIST_REUSE_S = 1.0
WORKLIST_KEEP_S = 10.0
NOTE_MAX = 500
CARDS_SENT_KEPT = 4096  # calls whose card this console has already reported on screen
SHOWN_MAX = 200  # calls one page's "on screen" report may name
SSE_HEADERS = {"cache-control": "no-store", "x-accel-buffering": "no"}
# What the pages act on (cards, the worklist, the wallboard); the stream's other events
# (call started and ended, vendors, family calls...) stay off the wire.
Body = TypeVar("Body")
_E = ConsoleEventName
PAGE_KINDS: frozenset[str] = frozenset({
    _E.SCREEN_POP, _E.CALL_ANSWERED, _E.QUEUE_ABANDONED, _E.CALLBACK_NEEDED,
    _E.EMERGENCY_OPEN, _E.ALARM_ACKNOWLEDGED, _E.ALARM_EMERGENCY, _E.SPOOLED_EMERGENCY,
    _E.SPOOLED_UNKNOWN_CALLER, _E.DISPATCH_ESCALATED, _E.FAMILY_ACKNOWLEDGED,
    _E.ORDER_CREATED, _E.MESSAGE_LEFT})


@dataclass(frozen=True)
class CachedWorklist(Generic[Body]):
    position: str  # the feed's last entry when the read began: it saw everything up to it
    read_at: float  # monotonic
    body: Body


class WorklistReads(Generic[Body]):
    """Every page of a region reloads the worklist on the same events: one read serves them.

    A page names the last event it handled (``seen``); a read that began after the feed had
    that event serves it (for up to WORKLIST_KEEP_S), an older one does not. Reads of a
    region run one at a time and begin at least WORKLIST_REUSE_S apart, so however many
    pages and events there are, the database sees about one worklist read a second per
    region, and the cards (which need no read) are never held up by them. The body is kept
    as ``read`` made it (the console keeps it encoded: one encoding serves every page)."""

    def __init__(self) -> None:
        self._last: dict[str, CachedWorklist[Body]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def clear(self) -> None:
        """Forget every read (an action of this console changed the worklist)."""
        self._last.clear()

    async def get(self, region: str, seen: str, position: Callable[[], str],
                  read: Callable[[], Awaitable[Body]]) -> Body:
        async with self._locks.setdefault(region, asyncio.Lock()):
            cached = self._last.get(region)
            if cached is not None and self._serves(cached, seen):
                return cached.body
            if cached is not None:
                wait = cached.read_at + WORKLIST_REUSE_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            began, read_at = position(), time.monotonic()
            body = await read()
            self._last[region] = CachedWorklist(began, read_at, body)
            return body

    @staticmethod
    def _serves(cached: CachedWorklist[Body], seen: str) -> bool:
        age = time.monotonic() - cached.read_at
        if not is_stream_id(seen):
            return age <= WORKLIST_REUSE_S
        return age <= WORKLIST_KEEP_S and stream_id_key(cached.position) >= stream_id_key(seen)


@dataclass(frozen=True, slots=True)
class PendingCard:
    """A card gone out to the screens: how many pages have yet to say it is on screen."""

    pages: int
    place: Place | None


@dataclass
class LiveContext:
    feed: LiveFeed | None
    client: aioredis.Redis | None
    prefix: str
    replay_s: int = POP_REPLAY_S
    worklists: WorklistReads[bytes] = field(default_factory=WorklistReads)
    screens: OpenScreens | None = None  # the regions this console's live pages cover
    answers: Acknowledgements | None = None  # "card on screen", for the engine that waits
    cards_sent: OrderedDict[str, None] = field(default_factory=OrderedDict)  # all said so
    cards_pending: OrderedDict[str, PendingCard] = field(default_factory=OrderedDict)


def live_context(request: Request) -> LiveContext:
    context: LiveContext = request.app.state.live
    return context


def _account(request: Request) -> Account:
    account = current_account(request)
    assert account is not None  # the endpoints are guarded
    return account


# -- the operator's screen -----------------------------------------------------------------

@require()
async def live_page(request: Request) -> Response:
    return render(request, "live.html", {"replay_s": live_context(request).replay_s,
                                         "call_back_blocked": call_back_blocked(request)})


def _since(request: Request, live: LiveContext) -> str | None:
    """Where a page's stream starts: its Last-Event-ID (a reconnect), else ``since`` (the
    first connect: ``replay`` seconds back, or a stream id), else now."""
    last = request.headers.get("last-event-id", "")
    if is_stream_id(last):
        return last
    since = request.query_params.get("since", "")
    if is_stream_id(since):
        return since
    replay = request.query_params.get("replay", "")
    if replay.isdigit() and live.feed is not None:
        seconds = min(int(replay), POP_REPLAY_S)
        return f"{stream_ms() - seconds * 1000}-0"
    return None


def stream_ms() -> int:
    """Wall-clock milliseconds, as in stream ids (Redis's clock, on the same machine or
    synchronised): the page's wait times tick from the entry's id."""
    return int(time.time() * 1000)


def sse_message(item: LiveEvent | FeedStatus, now_ms: int) -> str:
    """One server-sent event: a stream entry (its id is the SSE id) or the feed's state."""
    if isinstance(item, FeedStatus):
        if item.state == "idle":
            return ": idle\n\n"
        return f"event: status\ndata: {json.dumps({'state': item.state, 'now': now_ms})}\n\n"
    data = item.raw_data or json.dumps(item.data, ensure_ascii=False, default=str)
    body = (f'{{"kind": {json.dumps(item.kind)}, "t": {item.at_ms}, '
            f'"outbox_id": {json.dumps(item.outbox_id)}, "data": {data}}}')
    return f"id: {item.id}\ndata: {body}\n\n"


SIGNED_OUT = FeedStatus("signed_out")  # the account was disabled or changed: the stream ends


async def still_signed_in(state: ConsoleState, account: Account) -> bool:
    """The account is still enabled with the same role, region and seat. With the database
    down the stream goes on: an operator's screen must not go dark for that."""
    try:
        async with state.sessions() as db:
            now = await account_by_id(db, account.id)
    except STORAGE_ERRORS as exc:
        log.warning("account %s not re-checked (database unavailable): %s", account.id,
                    describe(exc))
        return True
    return now == account


@require()
async def live_events(request: Request) -> Response:
    """The page's event stream: its region's events, resumable by Last-Event-ID. The account
    is read again every ``console.account_check_s``: a disabled account (or one moved to
    another region) gets ``signed_out`` and the stream ends."""
    live = live_context(request)
    if live.feed is None:
        return Response("the live feed is not configured (redis.url)", 503,
                        media_type="text/plain")
    state = console_state(request)
    account = _account(request)
    check_s = state.settings.console.account_check_s
    batches = live.feed.subscribe_batches(account.scope, _since(request, live), PAGE_KINDS,
                                          heartbeat_s=min(HEARTBEAT_S, check_s))
    # an operator's screen (``screen=1``, live.js): calls wait for their card to reach it
    screens = live.screens if request.query_params.get("screen") == "1" else None
    showing = screens.opened(account.scope) if screens is not None else contextlib.nullcontext()

    async def stream() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        next_check = time.monotonic() + check_s
        try:
            async for batch in batches:
                if time.monotonic() >= next_check:
                    if not await still_signed_in(state, account):
                        yield sse_message(SIGNED_OUT, stream_ms())
                        return
                    next_check = time.monotonic() + check_s
                if screens is not None:  # before it goes: the page's word may come at once
                    for item in batch:
                        if isinstance(item, LiveEvent) and item.kind == _E.SCREEN_POP:
                            card_going_out(live, item)
                now = stream_ms()
                yield "".join(sse_message(item, now) for item in batch)
        finally:
            await batches.aclose()

    async def stream_while_open() -> AsyncIterator[str]:
        with showing:
            async for message in stream():
                yield message

    return StreamingResponse(stream_while_open(), media_type="text/event-stream",
                             headers=SSE_HEADERS)


def card_going_out(live: LiveContext, pop: LiveEvent) -> None:
    """A call's card is going out to this console's operators' screens: the console now
    awaits the word of each page open that shows it (``card_on_screen``)."""
    uniqueid = str(pop.data.get("uniqueid") or "")
    if (live.answers is None or live.screens is None or not is_uniqueid(uniqueid)
            or uniqueid in live.cards_sent or uniqueid in live.cards_pending):
        return
    _keep_bounded(live.cards_pending, uniqueid,
                  PendingCard(live.screens.showing(pop.place), pop.place))


async def card_on_screen(live: LiveContext, scope: RegionScope, uniqueid: str) -> bool:
    """A page of ``scope`` has the call's card in its DOM. Once every page that was open to
    show it has said so, the engine holding the call lets it ring the operators
    (``ivr.pop_delivery``). False for a card this console did not send to ``scope``."""
    pending = live.cards_pending.get(uniqueid)
    if pending is None or live.answers is None or not place_visible(pending.place, scope):
        return uniqueid in live.cards_sent
    del live.cards_pending[uniqueid]
    if pending.pages > 1:
        _keep_bounded(live.cards_pending, uniqueid, PendingCard(pending.pages - 1,
                                                                pending.place))
        return True
    _keep_bounded(live.cards_sent, uniqueid, None)
    await live.answers.signal_key(seen_key(live.prefix, uniqueid))
    return True


def _keep_bounded(kept: OrderedDict[str, Any], key: str, value: Any) -> None:
    """Remember ``key``; past CARDS_SENT_KEPT entries the oldest is forgotten."""
    kept[key] = value
    if len(kept) > CARDS_SENT_KEPT:
        kept.popitem(last=False)


@require()
async def cards_shown(request: Request) -> Response:
    """A live page's word that these calls' cards (``uniqueids``, comma-separated) are now
    in its DOM: 204, or 400 naming what is wrong with the list."""
    try:
        form = await read_form(request)
        listed = text(form, "uniqueids", SHOWN_MAX * 65)
    except FormError as exc:
        return _refusal(str(exc))
    assert listed is not None
    uniqueids = listed.split(",")
    if len(uniqueids) > SHOWN_MAX or not all(is_uniqueid(u) for u in uniqueids):
        return _refusal(f"uniqueids: up to {SHOWN_MAX} call ids, separated by commas")
    live = live_context(request)
    scope = _account(request).scope
    for uniqueid in dict.fromkeys(uniqueids):
        await card_on_screen(live, scope, uniqueid)
    return Response(status_code=204)


# -- the worklist --------------------------------------------------------------------------

@require()
async def worklist_json(request: Request) -> Response:
    """The worklist of the account's region, shared by its pages (``WorklistReads``)."""
    state = console_state(request)
    live = live_context(request)
    scope = _account(request).scope

    async def read() -> bytes:
        now = state.now()
        async with state.sessions() as session:
            items = await worklist(session, now, state.settings.emergency.stale_call_s,
                                   WORKLIST_WINDOW_S, scope)
        return json.dumps({"now": now.isoformat(), "items": [
            {**asdict(item), "since": item.since.isoformat(),
             "age_s": round((now - item.since).total_seconds())} for item in items]},
            ensure_ascii=False, default=str).encode("utf-8")

    position = (lambda: live.feed.position) if live.feed is not None else (lambda: "0-0")
    body = await live.worklists.get(str(scope), request.query_params.get("seen", ""),
                                    position, read)
    return Response(body, media_type="application/json")


def _refusal(message: str, status: int = 400) -> Response:
    return JSONResponse({"ok": False, "error": message}, status)


async def _order_in_region(request: Request, order_no: str) -> bool:
    """The order is the account's region's (checked in the query); a refusal is audited as
    the order pages audit theirs."""
    state = console_state(request)
    async with state.sessions() as db:
        if await visible_order(db, _account(request).scope, order_no) is not None:
            return True
        elsewhere = await order_exists(db, order_no)
        await record(db, actor(request), "order_refused", state.now(), order_no,
                     {"exists_elsewhere": elsewhere})
    return False


async def _order_no(request: Request, form: FormData) -> str | Response:
    """The form's order number if it is one of the region's, else the refusal to send."""
    order_no = text(form, "order_no", 16)
    assert order_no is not None
    if not is_valid_order_no(order_no):
        return _refusal("order_no: not an order number")
    if not await _order_in_region(request, order_no):
        return _refusal(f"No order {order_no} in your region.", 404)
    return order_no


# An alarm action: (session, order number, operator's name, now, the form's values, the
# audit row to write in the same transaction).
AlarmAction = Callable[[AsyncSession, str, str, datetime, dict[str, Any], Any], Awaitable[Any]]


async def _alarm_action(request: Request, audit_action: str,
                        fields: Callable[[FormData], dict[str, Any]],
                        act: AlarmAction) -> Response:
    """Read the form (``fields`` raises FormError on bad input) and the region's order
    number, then ``act`` with its audit row in the same transaction: 400, 404 or 409 with
    the reason and nothing written, or ``{"ok": true}``."""
    state = console_state(request)
    try:
        form = await read_form(request)
        values = fields(form)
        order_no = await _order_no(request, form)
    except FormError as exc:
        return _refusal(str(exc))
    if isinstance(order_no, Response):
        return order_no
    now = state.now()
    detail = {key: getattr(value, "value", value) for key, value in values.items()
              if key != "note"}
    async with state.sessions() as session:
        try:
            await act(session, order_no, _account(request).name, now, values,
                      audit_row(actor(request), audit_action, now, order_no, detail or None))
        except DispositionError as exc:
            return _refusal(str(exc), 409)
    live_context(request).worklists.clear()
    return JSONResponse({"ok": True})


async def _acknowledge(session: AsyncSession, order_no: str, name: str, now: datetime,
                       _values: dict[str, Any], audit: Any) -> None:
    await acknowledge_alarm(session, order_no, name, now, also=[audit])


@require()
async def acknowledge(request: Request) -> Response:
    """An operator acknowledges a new emergency: the pages stop sounding for it."""
    return await _alarm_action(request, "alarm_acknowledged", lambda form: {}, _acknowledge)


def _closing(form: FormData) -> dict[str, Any]:
    return {"disposition": choice(form, "disposition", list(Disposition)),
            "note": text(form, "note", NOTE_MAX, required=False, multiline=True) or ""}


async def _close(session: AsyncSession, order_no: str, name: str, now: datetime,
                 values: dict[str, Any], audit: Any) -> None:
    await close_alarm(session, order_no, values["disposition"], name, now,
                      note=values["note"], also=[audit])


@require()
async def close(request: Request) -> Response:
    """Close an emergency with its disposition and a note (the shared disposition service)."""
    return await _alarm_action(request, "alarm_closed", _closing, _close)


# -- the wallboard -------------------------------------------------------------------------

@require(Role.SUPERVISOR)
async def wallboard_page(request: Request) -> Response:
    return render(request, "wallboard.html", {"targets": ANSWER_TARGETS})


@require(Role.SUPERVISOR)
async def wallboard_json(request: Request) -> Response:
    state = console_state(request)
    live = live_context(request)
    settings = state.settings
    async with state.sessions() as session:
        figures = await wallboard_figures(
            session, _account(request).scope, state.now(),
            ZoneInfo(settings.dispatch.timezone), settings.emergency.stale_call_s)
    operators = (await operator_counts(live.client, live.prefix)
                 if live.client is not None else None)
    return JSONResponse({"figures": asdict(figures), "targets": ANSWER_TARGETS,
                         "operators": asdict(operators) if operators is not None else None})


ROUTES: list[BaseRoute] = [
    Route("/live", live_page, methods=["GET"]),
    Route("/live/events", live_events, methods=["GET"]),
    Route("/live/shown", cards_shown, methods=["POST"]),
    Route("/live/worklist.json", worklist_json, methods=["GET"]),
    Route("/live/worklist/ack", acknowledge, methods=["POST"]),
    Route("/live/worklist/close", close, methods=["POST"]),
    Route("/wallboard", wallboard_page, methods=["GET"]),
    Route("/wallboard.json", wallboard_json, methods=["GET"]),
]


def console_redis(settings: Settings, socket_path: str | None = None) -> aioredis.Redis | None:
    """The console's own client of the engine's Redis: the primary the Sentinels name,
    ``redis.url``, or the embedded server's socket (the demo); None without any."""
    if settings.redis.sentinels:
        from ivr.redis_link import primary_through_sentinels

        return primary_through_sentinels(settings.redis)
    if settings.redis.url:
        return aioredis.Redis.from_url(settings.redis.url, socket_timeout=5)
    if socket_path:
        return aioredis.Redis(unix_socket_path=socket_path, socket_timeout=5)
    return None


def live_parts(settings: Settings, socket_path: str | None = None,
               replay_s: int = POP_REPLAY_S
               ) -> tuple[list[BaseRoute], list[Path], list[Callable[[Starlette], Any]]]:
    """(routes, template folders, lifespans) of the live side, for ``create_app``; a page
    opened shows the screen pops of the last ``replay_s`` seconds."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = console_redis(settings, socket_path)
        prefix = settings.redis.key_prefix
        live = LiveContext(None, client, prefix, replay_s)
        renewing = None
        if client is None:
            log.warning("redis.url is not set: the console's live screens are off")
        else:
            live.feed = LiveFeed(client, f"{prefix}events")
            await live.feed.start()
            live.screens = OpenScreens(client, prefix)
            live.answers = Acknowledgements(client, prefix)
            renewing = asyncio.create_task(live.screens.renew_forever(), name="open screens")
        app.state.live = live
        try:
            yield
        finally:
            if renewing is not None:
                renewing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewing
            if live.screens is not None:
                await live.screens.withdraw()
            if live.feed is not None:
                await live.feed.stop()
            if client is not None:
                await client.aclose()

    return list(ROUTES), [TEMPLATES], [lifespan]

