"""The elder's profile as an operator's screen shows it when the call arrives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import Elder, ElderPhone, FamilyContact, WorkOrder
from dispatch.regions import Place

RECENT_ORDERS = 5


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    name: str
    relation: str
    number: str


async def family_contacts(session: AsyncSession, elder_id: int) -> list[Contact]:
    """The elder's family, in the order they are to be called."""
    rows = (await session.execute(
        select(FamilyContact.id, FamilyContact.name, FamilyContact.relation,
               FamilyContact.number_e164)
        .where(FamilyContact.elder_id == elder_id)
        .order_by(FamilyContact.priority, FamilyContact.id)
    )).all()
    return [Contact(*row) for row in rows]


async def elder_phones(session: AsyncSession, elder_id: int) -> list[tuple[str, str]]:
    """The elder's phones: (E.164 number, kind), in the order they were registered."""
    rows = (await session.execute(
        select(ElderPhone.number_e164, ElderPhone.kind).where(ElderPhone.elder_id == elder_id)
        .order_by(ElderPhone.id)
    )).all()
    return [(number, str(kind)) for number, kind in rows]


async def elder_profile(session: AsyncSession, elder_id: int) -> dict[str, Any] | None:
    """Who is calling: identity, address, health notes, phones, family, recent orders."""
    elder = await session.get(Elder, elder_id)
    if elder is None:
        return None
    phones = await elder_phones(session, elder_id)
    family = await family_contacts(session, elder_id)
    orders = (await session.execute(
        select(WorkOrder.order_no, WorkOrder.service, WorkOrder.status, WorkOrder.created_at)
        .where(WorkOrder.elder_id == elder_id)
        .order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc())
        .limit(RECENT_ORDERS)
    )).all()
    return {
        "elder_id": elder.id,
        "name": elder.name,
        "gender": elder.gender,
        "birth_date": elder.birth_date.isoformat() if elder.birth_date else None,
        "address": elder.address,
        "region": {"county": elder.county_name, "street": elder.street_name,
                   "community": elder.community_name},
        "location": {"lat": elder.latitude, "lon": elder.longitude},
        "language": elder.preferred_language,
        "subsidy": str(elder.subsidy_category),
        "health_notes": elder.health_notes,
        "phones": [{"number": n, "kind": k} for n, k in phones],
        "family": [{"name": c.name, "relation": c.relation, "number": c.number} for c in family],
        "recent_orders": [
            {"order_no": no, "service": str(svc), "status": str(st), "at": at.isoformat()}
            for no, svc, st, at in orders
        ],
    }


async def elder_place(session: AsyncSession, elder_id: int | None) -> Place:
    """The elder's region (empty for None or no such elder); no query when the session
    already holds the elder (after ``elder_profile``)."""
    return Place.of(None if elder_id is None else await session.get(Elder, elder_id))


async def order_place(session: AsyncSession, order_id: int) -> Place:
    """The region of the order's elder (empty if there is no such order)."""
    row = (await session.execute(
        select(Elder.province_code, Elder.city_code, Elder.county_code)
        .join(WorkOrder, WorkOrder.elder_id == Elder.id).where(WorkOrder.id == order_id)
    )).first()
    return Place() if row is None else Place(*row)
