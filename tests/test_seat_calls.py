"""Which numbers a seat may call, against the registry on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import (
    Elder,
    ElderPhone,
    FamilyContact,
    PhoneKind,
    Vendor,
    VendorPhone,
    VendorStatus,
)
from dispatch.seat_calls import SeatDialKind, check_seat_dial, trunk_digits

AREA = "931"


async def registry(session: AsyncSession) -> None:
    elder = Elder(name="王秀英", phones=[
        ElderPhone(number_e164="+8613800138000", kind=PhoneKind.MOBILE),
        ElderPhone(number_e164="+869318123456", kind=PhoneKind.LANDLINE)])
    session.add(elder)
    await session.flush()
    session.add_all([
        FamilyContact(elder_id=elder.id, name="李明", relation="儿子",
                      number_e164="+8613900139000"),
        FamilyContact(elder_id=elder.id, name="李华", relation="女儿",
                      number_e164="+447911123456"),
        Vendor(name="good", phones=[VendorPhone(number_e164="+8613700137000")]),
        Vendor(name="gone", status=VendorStatus.REMOVED,
               phones=[VendorPhone(number_e164="+8613600136000")]),
    ])
    await session.commit()


@pytest.mark.parametrize(("dialled", "kind", "digits"), [
    ("13800138000", SeatDialKind.ELDER, "13800138000"),
    ("+8613800138000", SeatDialKind.ELDER, "13800138000"),
    ("8123456", SeatDialKind.ELDER, "09318123456"),  # local landline, local area code
    ("09318123456", SeatDialKind.ELDER, "09318123456"),
    ("13900139000", SeatDialKind.FAMILY, "13900139000"),
    ("00447911123456", SeatDialKind.FAMILY, "00447911123456"),  # abroad
    ("13700137000", SeatDialKind.VENDOR, "13700137000"),
    ("120", SeatDialKind.EMERGENCY, "120"),
    ("110", SeatDialKind.EMERGENCY, "110"),
    ("119", SeatDialKind.EMERGENCY, "119"),
    ("13600136000", SeatDialKind.UNKNOWN, None),  # a removed vendor's phone
    ("13500135000", SeatDialKind.UNKNOWN, None),
    ("12349", SeatDialKind.UNKNOWN, None),
    ("13800138000&PJSIP/operator2", SeatDialKind.INVALID, None),
    ("13800138000@othertrunk", SeatDialKind.INVALID, None),
    ("138-0013-8000", SeatDialKind.INVALID, None),
    ("1380013800\n0", SeatDialKind.INVALID, None),
    ("", SeatDialKind.INVALID, None),
    ("12", SeatDialKind.INVALID, None),
])
async def test_check_seat_dial(db_session: AsyncSession, dialled: str, kind: SeatDialKind,
                               digits: str | None) -> None:
    await registry(db_session)
    verdict = await check_seat_dial(db_session, dialled, AREA)
    assert (verdict.kind, verdict.digits, verdict.allowed) == (kind, digits, digits is not None)


def test_trunk_digits() -> None:
    assert trunk_digits("+8613800138000") == "13800138000"
    assert trunk_digits("+869318123456") == "09318123456"
    assert trunk_digits("+447911123456") == "00447911123456"
