"""Dial(Tech/number[&Tech/number...][,timeout[,options]]) to scripted phones."""

from __future__ import annotations

import logging

from twisted.internet.defer import Deferred, DeferredList, ensureDeferred

from sim.apps.registry import AppContext, application
from sim.channel import Channel
from sim.dialplan.args import split_args
from sim.outbound import (
    ANSWER,
    CHANUNAVAIL,
    NOANSWER,
    DialStringError,
    OutboundLeg,
    parse_dialstring,
)

log = logging.getLogger(__name__)

_PRIORITY = {ANSWER: 0, "BUSY": 1, "CONGESTION": 2, NOANSWER: 3, "CANCEL": 4, CHANUNAVAIL: 5}


async def ring_all(chan: Channel, legs: list[OutboundLeg], timeout: float | None) -> list[str]:
    """Ring every leg at once until one answers, all fail, or the caller hangs up."""
    cancel: Deferred = Deferred()
    statuses: list[str | None] = [None] * len(legs)
    settled: Deferred = Deferred()

    def note(status: str, idx: int) -> str:
        statuses[idx] = status
        if (status == ANSWER or all(s is not None for s in statuses)) and not settled.called:
            settled.callback(None)
        return status

    attempts = [
        ensureDeferred(leg.ring(timeout, None, cancel)).addCallback(note, idx)
        for idx, leg in enumerate(legs)
    ]
    win = chan.window(opportunity=False)
    try:
        await win.wait(None, until=settled)
    finally:
        win.close()
    if not cancel.called:
        cancel.callback(None)
    results = await DeferredList(attempts, consumeErrors=True)
    return [res if ok else CHANUNAVAIL for ok, res in results]


@application("Dial")
async def dial(ctx: AppContext, data: str) -> int:
    args = [*split_args(data), "", ""]
    targets_text, timeout_text, options = args[0], args[1], args[2]
    chan = ctx.chan
    if not targets_text.strip():
        log.warning("Dial requires an argument (technology/resource)")
        return -1
    try:
        timeout = float(timeout_text) if timeout_text.strip() else None
    except ValueError:
        timeout = None
    targets = []
    for item in targets_text.split("&"):
        try:
            targets.append(parse_dialstring(item))
        except DialStringError as exc:
            log.warning("Dial: %s", exc)
    record = {"dialstring": targets_text, "started_at": ctx.pbx.clock.stamp(),
              "status": CHANUNAVAIL, "answered_at": None, "ended_at": None}
    if chan.record is not None:
        chan.record.dial.append(record)
    # a seat that is not registered, or an endpoint that does not exist, is not rung
    refused = {id(t): ctx.pbx.cannot_create(t) for t in targets}
    for target in targets:
        if refused[id(target)] is not None:
            log.warning("Dial: %s", refused[id(target)])
    targets = [t for t in targets if refused[id(t)] is None]
    if not targets:
        chan.set_var("DIALSTATUS", CHANUNAVAIL)
        return 0
    legs = [
        OutboundLeg(ctx.pbx, t, ctx.pbx.phones.party(*t.keys), caller=chan,
                    caller_num=chan.caller_num, caller_name=chan.caller_name,
                    linkedid=chan.linkedid, variables=chan.inheritable(),
                    language=chan.language)
        for t in targets
    ]
    statuses = await ring_all(chan, legs, timeout)
    winner = next((leg for leg, st in zip(legs, statuses, strict=True) if st == ANSWER), None)
    for leg, st in zip(legs, statuses, strict=True):
        if st == ANSWER and leg is not winner:
            leg.hangup(26)
    if chan.hungup:
        if winner is not None:
            winner.hangup(16)
        record["status"] = "CANCEL"
        chan.set_var("DIALSTATUS", "CANCEL")
        return -1
    if winner is None:
        status = min(statuses, key=lambda st: _PRIORITY.get(st, 9))
        record["status"] = status
        chan.set_var("DIALSTATUS", status)
        return 0
    record["status"] = ANSWER
    record["answered_at"] = ctx.pbx.clock.stamp()
    chan.set_var("DIALSTATUS", ANSWER)
    chan.answer()
    ctx.pbx.start_hangup_timer(winner.chan)
    ended_by_callee = await ctx.pbx.bridge(chan, winner.chan)
    record["ended_at"] = ctx.pbx.clock.stamp()
    if not winner.chan.destroyed:
        winner.chan.request_hangup(16, by="pbx", soft=True)
        winner.chan.destroy()
    winner.finish()
    if ended_by_callee and "g" in options and not chan.hungup:
        return 0
    if not chan.hungup:
        chan.request_hangup(16, by="pbx", soft=True)
    return -1


