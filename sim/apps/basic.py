"""Basic applications: Answer, NoOp, Verbose, Log, Set, MSet, Hangup, Wait, UserEvent,
Progress, Ringing, Busy, Congestion, ExecIf."""

from __future__ import annotations

import logging

from sim import events as ev
from sim.apps.registry import AppContext, application, find_app
from sim.channel import State
from sim.dialplan.args import split_args, split_once, split_top_level
from sim.functions import checkcondition, write_function

log = logging.getLogger(__name__)


@application("Answer")
async def answer(ctx: AppContext, data: str) -> int:
    if ctx.chan.hungup:
        return -1
    ctx.chan.answer()
    delay_ms = _float(data.split(",")[0], 0.0)
    if delay_ms > 0 and not await ctx.chan.sleep(delay_ms / 1000.0):
        return -1
    return 0


@application("NoOp")
async def noop(ctx: AppContext, data: str) -> int:
    return 0


@application("Verbose")
async def verbose(ctx: AppContext, data: str) -> int:
    level, msg = split_once(data, ",")
    log.info("%s: %s", ctx.chan.name, msg if msg is not None else level)
    return 0


@application("Log")
async def log_app(ctx: AppContext, data: str) -> int:
    level, msg = split_once(data, ",")
    pylevel = {"ERROR": logging.ERROR, "WARNING": logging.WARNING, "NOTICE": logging.INFO,
               "DEBUG": logging.DEBUG, "VERBOSE": logging.INFO}.get(level.strip().upper())
    if pylevel is None:
        log.warning("Log: unknown level %r", level)
        return 0
    log.log(pylevel, "%s: %s", ctx.chan.name, msg or "")
    return 0


def assign(ctx: AppContext, name: str, value: str) -> None:
    name = name.strip()
    if name.endswith(")") and "(" in name:
        write_function(ctx.pbx, ctx.chan, name, value)
    elif name:
        ctx.chan.set_var(name, value)


@application("Set")
async def set_app(ctx: AppContext, data: str) -> int:
    name, value = split_once(data, "=")
    if value is None:
        log.warning("Set requires an '=' to be a valid assignment: %r", data)
        return 0
    assign(ctx, name, value)
    return 0


@application("MSet")
async def mset(ctx: AppContext, data: str) -> int:
    for pair in split_args(data):
        name, value = split_once(pair, "=")
        if value is None:
            log.warning("MSet: ignoring entry %r with no '='", pair)
            continue
        assign(ctx, name, value)
    return 0


@application("Hangup")
async def hangup(ctx: AppContext, data: str) -> int:
    cause = int(_float(data, 16)) if data.strip() else 16
    ctx.chan.request_hangup(cause or 16, by="pbx", soft=True)
    return -1


@application("Wait")
async def wait(ctx: AppContext, data: str) -> int:
    seconds = _float(data, 0.0)
    return 0 if await ctx.chan.sleep(seconds) else -1


@application("UserEvent")
async def user_event(ctx: AppContext, data: str) -> int:
    args = split_args(data)
    name = args[0].strip()
    if not name:
        log.warning("UserEvent requires an argument (eventname,optional event body)")
        return -1
    body: dict[str, str] = {}
    for item in args[1:]:
        key, value = split_once(item, ":")
        if value is None:
            continue
        body[key] = value.strip()
    ctx.chan.emit(ev.channel_event("UserEvent", ev.USER, ctx.chan, ("UserEvent", name),
                                   *body.items()))
    return 0


@application("Progress")
async def progress(ctx: AppContext, data: str) -> int:
    return 0


@application("Ringing")
async def ringing(ctx: AppContext, data: str) -> int:
    return 0


async def _refuse(ctx: AppContext, data: str, cause: int, state: State) -> int:
    if ctx.chan.state != State.UP:
        ctx.chan.set_state(state)
    seconds = _float(data, 0.0)
    if seconds > 0:
        await ctx.chan.sleep(seconds)
    ctx.chan.request_hangup(cause, by="pbx", soft=True)
    return -1


@application("Busy")
async def busy(ctx: AppContext, data: str) -> int:
    return await _refuse(ctx, data, 17, State.BUSY)


@application("Congestion")
async def congestion(ctx: AppContext, data: str) -> int:
    return await _refuse(ctx, data, 34, State.BUSY)


@application("ExecIf")
async def exec_if(ctx: AppContext, data: str) -> int:
    cond, rest = split_once(data, "?")
    if rest is None:
        log.warning("ExecIf requires an argument: <expr>?<appiftrue>(<args>)[:<appiffalse>]")
        return -1
    iftrue, iffalse_or_none = split_top_level(rest)
    iffalse = iffalse_or_none or ""
    chosen = iftrue if checkcondition(cond) else iffalse
    if not chosen:
        return 0
    app, _, args = chosen.partition("(")
    fn = find_app(app.strip())
    if fn is None:
        log.warning("Could not find application! (%s)", app)
        return -1
    return await fn(ctx, args[:-1] if args.endswith(")") else args)


def _float(text: str, default: float) -> float:
    try:
        return float(text.strip())
    except ValueError:
        return default
