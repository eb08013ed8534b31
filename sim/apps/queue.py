"""Queue(queuename[,options[,URL[,announceoverride[,timeout]]]]) with scripted operators."""

from __future__ import annotations

import logging

from sim import events as ev
from sim.apps.registry import AppContext, application
from sim.dialplan.args import split_args
from sim.media import hear
from sim.queues import LEAVE_EMPTY, Connection

log = logging.getLogger(__name__)


@application("Queue")
async def queue(ctx: AppContext, data: str) -> int:
    args = split_args(data) + [""] * 5
    name, options, timeout_text = args[0].strip(), args[1], args[4]
    chan, pbx = ctx.chan, ctx.pbx
    if not name:
        log.warning("Queue requires an argument: queuename[,options[,URL[,announceoverride"
                    "[,timeout[,agi[,gosub[,rule[,position]]]]]]]]")
        return -1
    try:
        timeout = float(timeout_text) if timeout_text.strip() else None
    except ValueError:
        timeout = None
    if timeout is not None and timeout <= 0:
        timeout = None
    try:
        prio = int((chan.get_var("QUEUE_PRIO") or "0").strip() or "0")
    except ValueError:
        prio = 0
    chan.set_var("ABANDONED", "")  # cleared on entry, TRUE if the caller gives up
    if pbx.queues.refuses(name):  # joinempty: no QueueCallerJoin, back to the dialplan
        log.warning("Unable to join queue '%s'", name)
        chan.set_var("QUEUESTATUS", "JOINEMPTY")
        return 0
    # music on hold, unless 'r' (ringing instead): the class res_musiconhold would pick
    hold = None if "r" in options else pbx.moh.pick(chan.musicclass,
                                                     pbx.queues.musicclasses.get(name, ""))
    record = {"name": name, "joined_at": pbx.clock.stamp(), "priority": prio,
              "musicclass": hold.name if hold else None,
              "answered_at": None, "operator": None, "left_reason": None, "ended_at": None}
    if chan.record is not None:
        chan.record.queue = record
    waiter = pbx.queues.join(chan, name, prio)
    if hold is not None and hold.announcement and not chan.hungup and not waiter.done.called:
        hear(chan, hold.announcement)  # heard while the members already ring
    win = chan.window(opportunity=False)
    try:
        res = await win.wait(timeout, until=waiter.done)
    finally:
        win.close()
    if res.kind != "until" or not isinstance(res.value, Connection):
        # QueueCallerAbandon whatever the reason, as app_queue; its queue log says which
        pbx.queues.leave(waiter, {"hangup": "ABANDON", "redirect": None}.get(
            res.kind, "EXITWITHTIMEOUT"))
        emptied = res.kind == "until" and res.value == LEAVE_EMPTY  # it has left already
        record["left_reason"] = "leaveempty" if emptied else {
            "hangup": "abandon", "redirect": "redirect"}.get(res.kind, "timeout")
        record["ended_at"] = pbx.clock.stamp()
        if res.kind == "hangup":
            return -1
        if res.kind != "redirect":
            chan.set_var("QUEUESTATUS", "LEAVEEMPTY" if emptied else "TIMEOUT")
        return 0
    conn: Connection = res.value
    record.update(answered_at=pbx.clock.stamp(), operator=conn.operator.name,
                  left_reason="answered")
    chan.answer()
    talk_timer = pbx.clock.call_later(
        conn.operator.talk_s, conn.op_chan.request_hangup, 16, "operator", True
    )
    ended_by_agent = await pbx.bridge(chan, conn.op_chan)
    op_redirected = conn.op_chan.in_pbx and not conn.op_chan.hungup
    if talk_timer.active() and not op_redirected:
        talk_timer.cancel()  # a redirected operator still hangs up after talk_s
    redirected = chan.pending_goto is not None and not chan.hungup
    record["ended_at"] = pbx.clock.stamp()
    record["ended_by"] = "redirect" if redirected or op_redirected else (
        "operator" if ended_by_agent else "caller")
    talk = int(pbx.clock.stamp() - record["answered_at"])
    pbx.queues.stats(name).completed += 1
    pbx.queue_log.write(chan.uniqueid, name, conn.operator.name,
                        "COMPLETEAGENT" if ended_by_agent else "COMPLETECALLER",
                        conn.hold_time, talk, waiter.original_position)
    chan.emit(ev.channel_event(
        "AgentComplete", ev.AGENT, chan, ("Queue", name),
        ("Interface", conn.operator.interface), ("MemberName", conn.operator.name),
        ("HoldTime", str(conn.hold_time)), ("TalkTime", str(talk)),
        ("Reason", "agent" if ended_by_agent else "caller"),
    ))
    if op_redirected:  # the member stays in use until the redirected leg hangs up
        conn.op_chan.on_hangup(lambda: pbx.queues.release(conn.operator))
    else:
        if not conn.op_chan.destroyed:
            conn.op_chan.destroy()
        pbx.queues.release(conn.operator)
    if redirected or (ended_by_agent and "c" in options and not chan.hungup):
        return 0
    if not chan.hungup:
        chan.request_hangup(16, by="pbx", soft=True)
    return -1
