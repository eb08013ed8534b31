"""Dialplan flow: Goto, GotoIf, Gosub, GosubIf, Return."""

from __future__ import annotations

import logging

from sim.apps.registry import AppContext, application
from sim.dialplan.args import split_args, split_once
from sim.functions import checkcondition

log = logging.getLogger(__name__)


def parse_target(ctx: AppContext, text: str) -> tuple[str, str, int] | None:
    """``[[context,]exten,]priority`` -> absolute target, resolving labels."""
    parts = [p.strip() for p in split_args(text)]
    chan = ctx.chan
    if len(parts) == 1:
        context, exten, prio = chan.context, chan.exten, parts[0]
    elif len(parts) == 2:
        context, exten, prio = chan.context, parts[0], parts[1]
    elif len(parts) == 3:
        context, exten, prio = parts
    else:
        log.warning("Goto requires an argument ([[context,]extension,]priority): %r", text)
        return None
    if not prio:
        log.warning("Goto: empty priority in %r", text)
        return None
    number = ctx.runner.find_label(context, exten, prio)
    if number is None or number < 1:
        log.warning("Priority '%s' must be a number > 0, or valid label (%s,%s)", prio,
                    context, exten)
        return None
    return context, exten, number


def jump(ctx: AppContext, text: str) -> int:
    target = parse_target(ctx, text)
    if target is None:
        return -1
    ctx.runner.goto(*target)
    return 0


@application("Goto")
async def goto(ctx: AppContext, data: str) -> int:
    return jump(ctx, data)


def _branches(data: str) -> tuple[bool, str, str] | None:
    cond, rest = split_once(data, "?")
    if rest is None:
        return None
    iftrue, iffalse = split_once(rest, ":")
    return checkcondition(cond), iftrue, iffalse or ""


@application("GotoIf")
async def goto_if(ctx: AppContext, data: str) -> int:
    parsed = _branches(data)
    if parsed is None:
        log.warning("GotoIf requires an argument (condition?label1:label2): %r", data)
        return 0
    truth, iftrue, iffalse = parsed
    chosen = iftrue if truth else iffalse
    return jump(ctx, chosen) if chosen.strip() else 0


def _gosub(ctx: AppContext, text: str) -> int:
    target_text, args = text, []
    if text.endswith(")") and "(" in text:
        target_text, _, arg_text = text.partition("(")
        args = split_args(arg_text[:-1])
    target = parse_target(ctx, target_text)
    if target is None:
        return -1
    chan = ctx.chan
    saved: dict[str, tuple[str, str] | None] = {}
    names = ["ARGC", *[f"ARG{i}" for i in range(1, max(len(args), _old_argc(ctx)) + 1)]]
    for name in names:
        saved[name] = chan.variables.get(name)
    ctx.runner.gosub_stack.append((chan.context, chan.exten, chan.priority + 1, saved))
    chan.set_var("ARGC", str(len(args)))
    for i, value in enumerate(args, 1):
        chan.set_var(f"ARG{i}", value)
    for i in range(len(args) + 1, len(names)):
        chan.set_var(f"ARG{i}", "")
    ctx.runner.goto(*target)
    return 0


def _old_argc(ctx: AppContext) -> int:
    try:
        return int(ctx.chan.get_var("ARGC") or 0)
    except ValueError:
        return 0


@application("Gosub")
async def gosub(ctx: AppContext, data: str) -> int:
    return _gosub(ctx, data)


@application("GosubIf")
async def gosub_if(ctx: AppContext, data: str) -> int:
    parsed = _branches(data)
    if parsed is None:
        log.warning("GosubIf requires an argument: <cond>?<label1>(<args>)[:<label2>(<args>)]")
        return 0
    truth, iftrue, iffalse = parsed
    chosen = iftrue if truth else iffalse
    return _gosub(ctx, chosen) if chosen.strip() else 0


@application("Return")
async def return_app(ctx: AppContext, data: str) -> int:
    if not ctx.runner.gosub_stack:
        log.error("Return without Gosub: stack is empty")
        return -1
    context, exten, priority, saved = ctx.runner.gosub_stack.pop()
    chan = ctx.chan
    for name, item in saved.items():
        chan.variables.pop(name, None)
        if item is not None:
            chan.variables[name] = item
    chan.set_var("GOSUB_RETVAL", data)
    ctx.runner.goto(context, exten, priority)
    return 0
