"""Which outside numbers an operator's seat may call.

Against toll fraud a seat reaches only numbers the registry knows (an elder's phones, a family
contact, an active or suspended vendor's phones) and the emergency services 120, 110 and 119.
What the seat dialled must be plain digits (an optional leading +): anything else, dial-string
syntax included, is refused before any lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import String, bindparam, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import ElderPhone, FamilyContact, Vendor, VendorPhone, VendorStatus
from dispatch.phones import national, normalize

EMERGENCY_NUMBERS = frozenset({"120", "110", "119"})
_DIALLED = re.compile(r"\+?[0-9]{3,20}")


class SeatDialKind(StrEnum):
    EMERGENCY = "emergency"
    ELDER = "elder"
    FAMILY = "family"
    VENDOR = "vendor"
    UNKNOWN = "unknown"  # a valid number the registry does not know
    INVALID = "invalid"  # not a plain number


@dataclass(frozen=True, slots=True)
class SeatDial:
    kind: SeatDialKind
    digits: str | None  # what goes to the trunk (digits only), when allowed

    @property
    def allowed(self) -> bool:
        return self.digits is not None


def _known_statement() -> object:
    number = bindparam("number", type_=String)
    return union_all(
        select(literal(SeatDialKind.ELDER.value).label("kind"))
        .where(ElderPhone.number_e164 == number),
        select(literal(SeatDialKind.FAMILY.value)).where(FamilyContact.number_e164 == number),
        select(literal(SeatDialKind.VENDOR.value))
        .join_from(VendorPhone, Vendor, VendorPhone.vendor_id == Vendor.id)
        .where(VendorPhone.number_e164 == number, Vendor.status != VendorStatus.REMOVED),
    ).limit(1)


_KNOWN = _known_statement()


async def registry_kind(session: AsyncSession, number_e164: str) -> SeatDialKind | None:
    """Whose number this is in the registry (elder first, then family, then vendor), if any."""
    row = (await session.execute(_KNOWN, {"number": number_e164})).first()
    return SeatDialKind(row[0]) if row else None


def trunk_digits(number_e164: str) -> str:
    """Digits to dial from China: national for +86 numbers, else the 00 international prefix."""
    if number_e164.startswith("+86"):
        return national(number_e164)
    return "00" + number_e164.lstrip("+")


async def check_seat_dial(session: AsyncSession, dialled: str, local_area_code: str) -> SeatDial:
    """May a seat call ``dialled``? The digits to send to the trunk if so."""
    if not _DIALLED.fullmatch(dialled):
        return SeatDial(SeatDialKind.INVALID, None)
    if dialled in EMERGENCY_NUMBERS:
        return SeatDial(SeatDialKind.EMERGENCY, dialled)
    number = normalize(dialled, local_area_code)
    if number is None:
        return SeatDial(SeatDialKind.INVALID, None)
    kind = await registry_kind(session, number)
    if kind is None:
        return SeatDial(SeatDialKind.UNKNOWN, None)
    return SeatDial(kind, trunk_digits(number))
