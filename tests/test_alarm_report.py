"""Alarm dispositions and the alarm report (answer times against targets), on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.alarm_report import alarm_report, format_alarm_report
from dispatch.dispositions import DispositionError, close_alarm
from dispatch.models import Elder
from dispatch.orders import ServiceType, create_order
from dispatch.queue_calls import note_queue_event

AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def _elder(session: AsyncSession) -> int:
    elder = Elder(name="王桂兰", created_at=AT)
    session.add(elder)
    await session.commit()
    return elder.id


async def _queued(session: AsyncSession, uid: str, priority: int, wait_s: float | None,
                  abandoned: bool = False, reason: str = "handset_emergency") -> None:
    joined = AT + timedelta(minutes=len(uid))
    await note_queue_event(session, uid, queued_at=joined, joined_at=joined,
                           priority=priority, reason=reason)
    if wait_s is not None:
        await note_queue_event(session, uid, answered_at=joined + timedelta(seconds=wait_s),
                               outcome="answered", operator="op1")
    elif abandoned:
        await note_queue_event(session, uid, abandoned_at=joined + timedelta(seconds=90),
                               outcome="abandoned")


async def test_report_measures_answer_times_against_the_targets(db_session: AsyncSession
                                                                ) -> None:
    for uid, priority, wait in (("a", 10, 10.0), ("bb", 10, 50.0), ("ccc", 10, 150.0),
                                ("dddd", 10, None), ("eeeee", 0, 5.0)):
        await _queued(db_session, uid, priority, wait, abandoned=wait is None)
    await _queued(db_session, "ffffff", 10, 400.0, reason="emergency_callback")
    # A later event from a second engine process does not overwrite the first answer.
    await note_queue_event(db_session, "a", answered_at=AT + timedelta(hours=1))
    report = await alarm_report(db_session, AT, AT + timedelta(days=1), AT + timedelta(days=1))
    emergencies = report.emergencies
    assert (emergencies.offered, emergencies.answered, emergencies.abandoned) == (4, 3, 1)
    assert emergencies.within(15) == 25.0
    assert emergencies.within(60) == 50.0
    assert emergencies.within(180) == 75.0
    assert report.all_calls.offered == 5
    assert (report.callbacks.offered, report.callbacks.answered) == (1, 1)  # not in the above
    text = format_alarm_report(report)
    assert "answered within  60 s:   50.0 %  (target 97.5 %)" in text


async def test_alarms_are_closed_with_a_disposition_once(db_session: AsyncSession) -> None:
    elder_id = await _elder(db_session)
    alarm = await create_order(db_session, elder_id=elder_id, service=ServiceType.EMERGENCY,
                               source="handset", call_uniqueid="1.1", requested_by="elder",
                               at=AT)
    meal = await create_order(db_session, elder_id=elder_id, service=ServiceType.MEAL,
                              source="phone", call_uniqueid="1.2", requested_by="elder", at=AT)
    with pytest.raises(DispositionError):
        await close_alarm(db_session, alarm.order_no, "accidental", "  ", AT)
    with pytest.raises(DispositionError):
        await close_alarm(db_session, meal.order_no, "accidental", "op7", AT)
    with pytest.raises(ValueError):
        await close_alarm(db_session, alarm.order_no, "maybe", "op7", AT)
    await close_alarm(db_session, alarm.order_no, "accidental", "op7", AT + timedelta(minutes=3))
    with pytest.raises(DispositionError, match="already closed"):
        await close_alarm(db_session, alarm.order_no, "real_emergency", "op7", AT)
    report = await alarm_report(db_session, AT, AT + timedelta(days=1), AT + timedelta(days=1))
    assert report.dispositions == {"accidental": 1}


def test_cli_report_and_close(tmp_path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.cli import main

    monkeypatch.setenv("HOTLINE_DATABASE__URL", f"sqlite:///{tmp_path / 'h.sqlite3'}")
    monkeypatch.setenv("HOTLINE_AMI__ENABLED", "false")
    since = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()  # the real clock's
    assert main(["report", "alarms", "--since", since]) == 0
    assert "emergency calls: offered 0" in capsys.readouterr().out
    assert main(["alarm", "close", "12345678", "--as", "test", "--by", "op1"]) == 1
    assert "no emergency order 12345678" in capsys.readouterr().err
