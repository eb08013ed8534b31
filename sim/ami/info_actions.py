"""ShowDialPlan (main/pbx.c) and QueueStatus (apps/app_queue.c): what the PBX has loaded."""

from __future__ import annotations

from sim.channel import Channel

from .framing import Request
from .session import AmiSession
from .wire import action_id, encode, error, list_complete, response

REGISTRAR = "pbx_config"  # the module that registers extensions.conf's contexts
# enum ast_device_state, as a QueueMember's Status
DEVICE_STATUS = {"UNKNOWN": 0, "NOT_INUSE": 1, "INUSE": 2, "BUSY": 3, "INVALID": 4,
                 "UNAVAILABLE": 5, "RINGING": 6}


def action_showdialplan(session: AmiSession, request: Request) -> None:
    """manager_show_dialplan(): a ListDialplan event per priority (and per include); an
    Error when the Context (or Extension) asked for does not exist."""
    wanted_context = request.get("Context")
    wanted_exten = request.get("Extension")
    plan = session.factory.pbx.dialplan
    items: list[bytes] = []
    contexts = extens = prios = 0
    found_context = found_exten = False
    for context in plan.contexts.values():
        if wanted_context and context.name != wanted_context:
            continue
        found_context = True
        contexts += 1
        for extension in context.extensions.values():
            if wanted_exten and extension.name != wanted_exten:
                continue
            found_exten = True
            extens += 1
            labels = {prio: label for label, prio in extension.labels.items()}
            for prio, step in sorted(extension.steps.items()):
                prios += 1
                pairs = [("Event", "ListDialplan"), *action_id(request),
                         ("Context", context.name), ("Extension", extension.name)]
                if prio in labels:
                    pairs.append(("ExtensionLabel", labels[prio]))
                pairs += [("Priority", str(prio)), ("Application", step.app),
                          ("AppData", step.data), ("Registrar", REGISTRAR)]
                items.append(encode(pairs))
        if not wanted_exten:
            for include in context.includes:
                items.append(encode([("Event", "ListDialplan"), *action_id(request),
                                     ("Context", context.name), ("IncludeContext", include),
                                     ("Registrar", REGISTRAR)]))
    if wanted_context and not found_context:
        session.send(error(request, f"Did not find context {wanted_context}"))
        return
    if wanted_exten and not found_exten:
        where = f"@{wanted_context}" if wanted_context else " in any context"
        session.send(error(request, f"Did not find extension {wanted_exten}{where}"))
        return
    session.send(response(request, "Success", "DialPlan list will follow", list_flag="start"))
    for item in items:
        session.send(item)
    complete = list_complete(request, "ShowDialPlanComplete", len(items))[:-2]
    session.send(complete + encode([("ListExtensions", str(extens)),
                                    ("ListPriorities", str(prios)),
                                    ("ListContexts", str(contexts))]))


def _id(value: str) -> str:
    return value or "unknown"


def action_queuestatus(session: AmiSession, request: Request) -> None:
    """manager_queues_status(): QueueParams, QueueMember and QueueEntry events of every
    configured queue (or only ``Queue``); an unknown queue gives an empty list."""
    pbx = session.factory.pbx
    queues = pbx.queues
    wanted = request.get("Queue").lower()
    member_filter = request.get("Member")
    session.send(response(request, "Success", "Queue status will follow", list_flag="start"))
    ids = action_id(request)
    count = 0
    now = pbx.clock.elapsed()
    for name in queues.names():
        if wanted and name.lower() != wanted:
            continue
        stats = queues.stats(name)
        session.send(encode([
            ("Event", "QueueParams"), ("Queue", name), ("Max", "0"),
            ("Strategy", queues.strategies.get(name, "ringall")),
            ("Calls", str(queues.waiting_count(name))), ("Holdtime", "0"), ("TalkTime", "0"),
            ("Completed", str(stats.completed)), ("Abandoned", str(stats.abandoned)),
            ("ServiceLevel", "0"), ("ServicelevelPerf", "0.0"), ("ServicelevelPerf2", "0.0"),
            ("Weight", "0"), *ids]))
        count += 1
        for op in queues.members(name):
            if member_filter and member_filter not in (op.interface, op.name):
                continue
            session.send(encode([
                ("Event", "QueueMember"), ("Queue", name), ("Name", op.name),
                ("Location", op.interface), ("StateInterface", op.interface),
                ("Membership", "static"), ("Penalty", "0"), ("CallsTaken", str(op.calls_taken)),
                ("LastCall", str(op.last_call)), ("LastPause", "0"),
                ("LoginTime", str(op.login_time)), ("InCall", "1" if op.busy else "0"),
                ("Status", str(DEVICE_STATUS.get(queues.device_state(op), 0))),
                ("Paused", "0" if op.available else "1"), ("PausedReason", ""),
                ("Wrapuptime", "0"), *ids]))
            count += 1
        for position, waiter in enumerate(queues.waiting.get(name, []), 1):
            chan: Channel = waiter.chan
            session.send(encode([
                ("Event", "QueueEntry"), ("Queue", name), ("Position", str(position)),
                ("Channel", chan.name), ("Uniqueid", chan.uniqueid),
                ("CallerIDNum", _id(chan.caller_num)), ("CallerIDName", _id(chan.caller_name)),
                ("ConnectedLineNum", _id(chan.connected_num)),
                ("ConnectedLineName", _id(chan.connected_name)),
                ("Wait", str(int(now - waiter.joined_at))), ("Priority", str(waiter.prio)),
                *ids]))
            count += 1
    session.send(list_complete(request, "QueueStatusComplete", count))
