"""The console's worklist and wallboard queries on SQLite and PostgreSQL: only the account's
region (callers nobody knows included), an operator's acknowledgement, today's answer
figures against their targets, and the operators counted from queue member state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.alarm_acks import ACK_ANNOUNCEMENT, acknowledge_alarm
from dispatch.calls import record_call
from dispatch.dispositions import DispositionError
from dispatch.models import Elder, OrderStatus, OutboxEntry, RecordingKind, WorkOrder
from dispatch.orders import ServiceType, create_order
from dispatch.queue_calls import note_queue_event
from dispatch.recordings import NewRecording, add_recording, exists_elsewhere, playable
from dispatch.regions import RegionScope
from dispatch.wallboard import local_midnight, wallboard_figures
from dispatch.worklist import CALL_BACK, UNATTENDED, worklist
from ivr.queue_members import Member, count_operators

NOW = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai
TZ = ZoneInfo("Asia/Shanghai")
EAST, WEST = "110105", "110106"
EAST_SCOPE = RegionScope.parse(f"county:{EAST}")


async def elder(session: AsyncSession, name: str, county: str) -> int:
    row = Elder(name=name, address=f"{name}家", created_at=NOW, province_code="110000",
                city_code="110100", county_code=county)
    session.add(row)
    await session.commit()
    return row.id


async def emergency(session: AsyncSession, elder_id: int, uid: str, minutes_ago: float
                    ) -> str:
    order = await create_order(session, elder_id=elder_id, service=ServiceType.EMERGENCY,
                               source="handset", call_uniqueid=uid, requested_by="elder",
                               at=NOW - timedelta(minutes=minutes_ago))
    assert order.order_no is not None
    return order.order_no


async def queued(session: AsyncSession, uid: str, minutes_ago: float, wait_s: float | None,
                 priority: int = 0, outcome: str | None = None) -> None:
    at = NOW - timedelta(minutes=minutes_ago)
    await note_queue_event(session, uid, queued_at=at, joined_at=at, priority=priority,
                           reason="caller_request", caller_number="13800138000")
    if wait_s is not None:
        await note_queue_event(session, uid, answered_at=at + timedelta(seconds=wait_s),
                               outcome="answered")
    elif outcome is not None:
        await note_queue_event(session, uid, abandoned_at=at + timedelta(seconds=30),
                               outcome=outcome)


async def operator_call(session: AsyncSession, uid: str, elder_id: int | None,
                        minutes_ago: float) -> None:
    """The call record of a caller who asked for a human, ended 19 minutes ago."""
    await record_call(session, uniqueid=uid, linkedid=uid, channel="PJSIP/pstn-1",
                      direction="inbound", caller_number="+8613800138000",
                      identity_status="elder" if elder_id else "unknown",
                      elder_id=elder_id, started_at=NOW - timedelta(minutes=minutes_ago),
                      ended_at=NOW - timedelta(minutes=19), disposition="operator",
                      reason="caller_request")


async def test_an_account_sees_its_region_and_the_callers_nobody_knows(
        db_session: AsyncSession) -> None:
    east, west = await elder(db_session, "王东", EAST), await elder(db_session, "李西", WEST)
    east_no = await emergency(db_session, east, "1.1", 10)
    await emergency(db_session, west, "2.1", 5)
    for uid, elder_id in (("3.1", east), ("3.2", west), ("3.3", None)):
        await queued(db_session, uid, 20, None, outcome="abandoned")
        await operator_call(db_session, uid, elder_id, 21)
    everything = await worklist(db_session, NOW, 3600, 86400)
    assert len(everything) == 5
    seen = await worklist(db_session, NOW, 3600, 86400, EAST_SCOPE)
    assert [(item.section, item.order_no) for item in seen] == [
        (UNATTENDED, east_no), (CALL_BACK, None), (CALL_BACK, None)]
    assert not seen[0].acknowledged


async def test_messages_are_call_backs_of_their_region_with_their_recording(
        db_session: AsyncSession) -> None:
    east, west = await elder(db_session, "王东", EAST), await elder(db_session, "李西", WEST)
    tokens = {}
    for uid, elder_id in (("4.1", east), ("4.2", west), ("4.3", None)):
        await queued(db_session, uid, 30, None, outcome="unanswered")
        await operator_call(db_session, uid, elder_id, 31)
        tokens[uid] = (await add_recording(db_session, NewRecording(
            kind=RecordingKind.MESSAGE, uniqueid=uid, file=f"messages/{uid}.wav",
            started_at=NOW - timedelta(minutes=20), duration_s=12.4, elder_id=elder_id,
            caller_number="+8613800138000"))).token
    seen = await worklist(db_session, NOW, 3600, 86400, EAST_SCOPE)
    # one item a call: the message, which replaces the unanswered wait
    assert [(item.call, item.recording, item.note) for item in seen] == [
        ("4.1", tokens["4.1"], "left a message (12 s)"),
        ("4.3", tokens["4.3"], "left a message (12 s)")]
    assert len(await worklist(db_session, NOW, 3600, 86400)) == 3
    assert (await playable(db_session, EAST_SCOPE, tokens["4.1"])) is not None
    assert (await playable(db_session, EAST_SCOPE, tokens["4.3"])) is not None  # nobody's
    assert (await playable(db_session, EAST_SCOPE, tokens["4.2"])) is None
    assert (await playable(db_session, EAST_SCOPE, "x" * 200)) is None
    assert await exists_elsewhere(db_session, tokens["4.2"])


async def test_an_acknowledgement_is_kept_once_and_announced(db_session: AsyncSession) -> None:
    east = await elder(db_session, "王东", EAST)
    order_no = await emergency(db_session, east, "1.1", 3)
    assert await acknowledge_alarm(db_session, order_no, "zhang", NOW)
    assert not await acknowledge_alarm(db_session, order_no, "li", NOW)  # once
    item, = await worklist(db_session, NOW, 3600, 86400, EAST_SCOPE)
    assert item.section == UNATTENDED and item.acknowledged
    announced = (await db_session.execute(
        select(OutboxEntry.kind, OutboxEntry.payload))).all()
    assert [(kind, payload["by"], payload["place"]["county_code"])
            for kind, payload in announced] == [(ACK_ANNOUNCEMENT, "zhang", EAST)]
    with pytest.raises(DispositionError):
        await acknowledge_alarm(db_session, "00000000", "zhang", NOW)


async def test_wallboard_figures_for_today(db_session: AsyncSession) -> None:
    east, west = await elder(db_session, "王东", EAST), await elder(db_session, "李西", WEST)
    # today (local time): three ordinary calls, two emergencies, one abandoned
    await queued(db_session, "1.1", 60, 10)
    await queued(db_session, "1.2", 50, 40)
    await queued(db_session, "1.3", 40, None, outcome="abandoned")
    await queued(db_session, "1.4", 30, 50, priority=10)
    await queued(db_session, "1.5", 20, 200, priority=10)
    # yesterday: not counted
    await queued(db_session, "0.1", 15 * 60, 500)
    # two waiting now, the oldest for 3 minutes
    await queued(db_session, "2.1", 3, None)
    await queued(db_session, "2.2", 1, None)
    for elder_id in (east, west):
        order = await create_order(db_session, elder_id=elder_id, service=ServiceType.MEAL,
                                   source="phone", call_uniqueid=None, requested_by="elder",
                                   at=NOW - timedelta(hours=1))
        order_row = await db_session.get(WorkOrder, order.id)
        assert order_row is not None
        order_row.status = OrderStatus.ESCALATED
    await db_session.commit()
    figures = await wallboard_figures(db_session, EAST_SCOPE, NOW, TZ, 3600)
    assert (figures.waiting, figures.oldest_wait_s) == (2, 180.0)
    assert figures.offered_today == 7  # the two still waiting were offered too
    assert figures.answered_15s == pytest.approx(100 * 1 / 7, abs=0.05)
    assert figures.emergencies_today == 2
    assert (figures.emergency_60s, figures.emergency_180s) == (50.0, 50.0)
    assert figures.abandoned_today == 1
    assert (figures.vendor_offers_today, figures.vendor_acceptance) == (0, None)
    assert figures.escalated_waiting == 1  # the east county's only
    assert local_midnight(NOW, TZ) == datetime(2026, 5, 3, 16, 0, tzinfo=UTC)


def test_operators_are_counted_once_across_queues() -> None:
    def member(queue: str, interface: str, status: str = "1", paused: bool = False,
               in_call: bool = False) -> Member:
        return Member(queue, interface, interface, status, paused, in_call)

    counts = count_operators([
        member("operators", "PJSIP/op1"), member("operators-overflow", "PJSIP/op1"),
        member("operators", "PJSIP/op2", paused=True),
        member("operators-overflow", "PJSIP/op2", paused=True),
        member("operators", "PJSIP/op3", status="2", in_call=True),
        member("operators-overflow", "PJSIP/op3", status="2"),
        member("operators", "PJSIP/op4", status="5"),  # softphone not registered
        member("operators", "PJSIP/op5", paused=True),
        member("operators-overflow", "PJSIP/op5"),  # paused in one queue only: available
    ])
    assert (counts.logged_in, counts.paused, counts.on_call, counts.available) == (4, 1, 1, 2)
