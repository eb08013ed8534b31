"""Call records written on the call path, read back through the ORM, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.calls import record_call
from dispatch.models import Call

AT = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)


def _call(uniqueid: str, **overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "uniqueid": uniqueid, "linkedid": uniqueid, "channel": "PJSIP/pstn-00000001",
        "direction": "inbound", "caller_number": "+8613800138000",
        "identity_status": "unknown", "elder_id": None, "started_at": AT,
        "answered_at": AT + timedelta(seconds=1), "order_announced_at": None,
        "ended_at": AT + timedelta(seconds=40), "disposition": "operator",
        "reason": "unknown_caller",
    }
    fields.update(overrides)
    return fields


async def test_a_finished_call_is_stored_whole(db_session: AsyncSession) -> None:
    await record_call(db_session, **_call("1795346825.0"))  # type: ignore[arg-type]
    stored = (await db_session.execute(select(Call))).scalar_one()
    assert stored.ended_at == AT + timedelta(seconds=40)
    assert stored.ended_at.tzinfo is not None
    assert (stored.disposition, stored.reason) == ("operator", "unknown_caller")


async def test_a_repeated_record_is_ignored(db_session: AsyncSession) -> None:
    await record_call(db_session, **_call("1795346825.1"))  # type: ignore[arg-type]
    await record_call(db_session, **_call("1795346825.1", reason="other"))  # type: ignore[arg-type]
    count = await db_session.scalar(select(func.count()).select_from(Call))
    assert count == 1


async def test_a_record_for_a_missing_elder_is_refused(db_session: AsyncSession) -> None:
    with pytest.raises(IntegrityError):
        await record_call(db_session, **_call("1795346825.2", elder_id=999_999))  # type: ignore[arg-type]
    assert await db_session.scalar(select(func.count()).select_from(Call)) == 0
