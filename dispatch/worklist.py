"""The operators' worklist (``hotline worklist``): the first thing an operator sees.

Open emergencies no operator has answered come first, oldest first; then emergencies an
operator answered that still await a disposition; then callers who need a call back (their
queue wait ended unanswered or abandoned, they hung up before choosing, or they left a
spoken message). Phone numbers are masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.alarm_acks import acknowledged
from dispatch.models import Call, Elder, QueueCall, ServiceType, WorkOrder
from dispatch.open_alarms import CALLBACK_KINDS, CALLBACK_REASON, OpenAlarm, open_alarms
from dispatch.phones import mask
from dispatch.quality import callback_numbers
from dispatch.recordings import messages_since
from dispatch.regions import RegionScope

UNATTENDED = "unattended"
AWAITING_DISPOSITION = "awaiting_disposition"
CALL_BACK = "call_back"
SECTIONS = (
    (UNATTENDED, "Open emergencies no operator has answered"),
    (AWAITING_DISPOSITION, "Emergencies answered, awaiting a disposition"),
    (CALL_BACK, "Callers to call back"),
)
CALLBACK_NEEDED = "callback_needed"  # the inbound call record's reason: hung up before choosing
CARE_HELP = "care_help"  # a check-in call's record: the elder pressed 2, "I need help"
CALL_BACK_NOTES = {CALLBACK_NEEDED: "hung up before choosing",
                   CARE_HELP: "asked for help on a check-in call"}
QUEUE_GAVE_UP = ("abandoned", "unanswered")


@dataclass(frozen=True, slots=True)
class WorkItem:
    section: str
    since: datetime
    phone: str  # masked
    order_no: str | None = None
    elder_name: str | None = None
    address: str | None = None
    attempts: int = 0  # the engine's callbacks
    note: str = ""
    order_id: int | None = None
    acknowledged: bool = False  # an operator acknowledged the emergency (dispatch/alarm_acks)
    call: str | None = None  # a caller to call back: the ended call's uniqueid
    recording: str | None = None  # the caller's message: its recording's token


async def worklist(session: AsyncSession, now: datetime, stale_s: float,
                   window_s: float, scope: RegionScope | None = None) -> list[WorkItem]:
    """Every item (only ``scope``'s, callers nobody knows included), in the order an operator
    should take them; callers to call back from the last ``window_s`` seconds."""
    alarms = await open_alarms(session, now, stale_s, scope=scope)
    acked = await acknowledged(session, [alarm.order_id for alarm in alarms])
    numbers = await callback_numbers(session, [alarm.elder_id for alarm in alarms],
                                     CALLBACK_KINDS)
    emergencies = [_emergency_item(alarm, numbers.get(alarm.elder_id),
                                   alarm.order_id in acked) for alarm in alarms]
    emergencies.sort(key=lambda item: item.section != UNATTENDED)  # stable: oldest first
    return emergencies + await callers_to_call_back(
        session, now - timedelta(seconds=window_s), scope)


def _emergency_item(alarm: OpenAlarm, number: str | None, acked: bool) -> WorkItem:
    if alarm.answered:
        section, note = AWAITING_DISPOSITION, "answered by an operator"
    else:
        section = UNATTENDED
        note = "in the queue now" if alarm.in_progress else "nobody on it"
    if alarm.attempts:
        note += f"; callbacks {alarm.attempts}, last {alarm.last_outcome}"
    return WorkItem(section=section, since=alarm.created_at, phone=mask(number),
                    order_no=alarm.order_no, elder_name=alarm.elder_name,
                    address=alarm.address, attempts=alarm.attempts, note=note,
                    order_id=alarm.order_id, acknowledged=acked)


async def callers_to_call_back(session: AsyncSession, since: datetime,
                               scope: RegionScope | None = None) -> list[WorkItem]:
    """Queue waits that ended unanswered or abandoned (the engine's emergency callbacks and
    emergency calls excepted: those are on the list as emergencies), calls that ended before
    the caller chose anything, and messages callers left (one item a call, the message's if
    there is one), oldest first; with ``scope``, those of its elders and of callers no elder
    is known for."""
    emergency_call = exists().where(WorkOrder.call_uniqueid == QueueCall.uniqueid,
                                    WorkOrder.service == ServiceType.EMERGENCY)
    in_scope = [] if scope is None else [or_(Call.elder_id.is_(None),
                                             scope.elder_condition())]
    waits = (await session.execute(
        select(QueueCall.uniqueid, QueueCall.queued_at, QueueCall.caller_number,
               QueueCall.reason, QueueCall.outcome)
        .outerjoin(Call, Call.uniqueid == QueueCall.uniqueid)
        .outerjoin(Elder, Elder.id == Call.elder_id)
        .where(QueueCall.queued_at >= since, QueueCall.outcome.in_(QUEUE_GAVE_UP),
               or_(QueueCall.reason.is_(None), QueueCall.reason != CALLBACK_REASON),
               ~emergency_call, *in_scope)
    )).all()
    hung_up = (await session.execute(
        select(Call.uniqueid, Call.started_at, Call.caller_number, Call.reason)
        .outerjoin(Elder, Elder.id == Call.elder_id)
        .where(Call.started_at >= since, Call.reason.in_(CALL_BACK_NOTES), *in_scope)
    )).all()
    messages = await messages_since(session, since, scope)
    items = [WorkItem(section=CALL_BACK, since=message.started_at,
                      phone=mask(message.caller_number), note=_message_note(message.duration_s),
                      call=message.uniqueid, recording=message.token)
             for message in messages]
    seen = {message.uniqueid for message in messages}
    items += [WorkItem(section=CALL_BACK, since=row.queued_at, phone=mask(row.caller_number),
                       note=f"{row.outcome} in the queue ({row.reason or 'no reason'})",
                       call=row.uniqueid)
              for row in waits if row.uniqueid not in seen]
    seen |= {row.uniqueid for row in waits}
    items += [WorkItem(section=CALL_BACK, since=row.started_at, phone=mask(row.caller_number),
                       note=CALL_BACK_NOTES[row.reason], call=row.uniqueid)
              for row in hung_up if row.uniqueid not in seen]
    return sorted(items, key=lambda item: item.since)


def _message_note(duration_s: float | None) -> str:
    return "left a message" + (f" ({round(duration_s)} s)" if duration_s else "")


def format_worklist(items: list[WorkItem], now: datetime, window_s: float) -> str:
    lines = [f"Worklist {now:%Y-%m-%d %H:%M} UTC"]
    for number, (section, title) in enumerate(SECTIONS, 1):
        shown = [item for item in items if item.section == section]
        scope = f", last {_duration(window_s)}" if section == CALL_BACK else ""
        lines.append(f"{number}. {title}{scope}: {len(shown)}")
        for item in shown:
            who = "  ".join(part for part in (item.order_no, item.elder_name) if part)
            where = f"  {item.address}" if item.address else ""
            lines.append(f"   {who + '  ' if who else ''}{item.phone}  "
                         f"{_duration((now - item.since).total_seconds())} ago  "
                         f"{item.note}{where}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
