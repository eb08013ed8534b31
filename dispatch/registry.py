"""Caller identification: who is calling, and for which elder.

A number registered as an elder's phone identifies that elder (and flags a one-key
handset line). Otherwise a family contact's number identifies the caller as acting for
that elder. When one number is the contact of several elders (a child of two registered
parents), the elder for whom it has the best (lowest) contact priority wins, then the
lowest elder id: the choice is deterministic. An elder phone always beats a family phone.
Both cases are answered by a single indexed query.

One number may be the phone of several elders (a household: a couple's landline). The
identity then names the first registered of them (lowest id) and lists them all in
``household``, in that order, which is the order callers choose by key.

An elder flagged ``no_menu`` (who cannot work a keypad menu) is marked on the identity, so
that the call goes straight to an operator; on a shared number, one such member is enough.
:func:`set_no_menu` sets or clears the flag (the CLI's ``hotline elder no-menu`` and the
operators' console).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import (
    Boolean,
    Select,
    String,
    bindparam,
    cast,
    false,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from dispatch.db import fetch_committed_rows
from dispatch.driver_batch import batched_rows
from dispatch.models import Elder, ElderPhone, FamilyContact, PhoneKind
from dispatch.phones import normalize
from dispatch.regions import Place

MAX_HOUSEHOLD = 8  # elders sharing one number that the caller can choose from (keys 1-8)


class CallerStatus(StrEnum):
    ELDER = "elder"
    FAMILY = "family"
    UNKNOWN = "unknown"
    WITHHELD = "withheld"  # no usable number: withheld, anonymous or garbage caller ID


@dataclass(frozen=True, slots=True)
class HouseholdMember:
    """One of the elders registered on a shared number."""

    elder_id: int
    name: str
    language: str
    no_menu: bool = False
    place: Place = field(default_factory=Place)


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    status: CallerStatus
    number: str | None  # normalized E.164, None if withheld
    elder_id: int | None
    elder_name: str | None
    language: str  # the elder's preferred language (default language if no elder)
    relation: str | None  # for FAMILY: e.g. "女儿"
    handset: bool  # the call came from a registered one-key handset line
    # every elder whose own phone this number is, when there are several (else empty)
    household: tuple[HouseholdMember, ...] = ()
    # the elder (or, on a shared number, one of the household) cannot use a keypad menu
    no_menu: bool = False
    place: Place = field(default_factory=Place)  # the elder's region (empty for an unknown caller)

    def as_member(self, member: HouseholdMember) -> CallerIdentity:
        """This call as made by ``member`` of the household."""
        return replace(self, elder_id=member.elder_id, elder_name=member.name,
                       language=member.language, household=(), no_menu=member.no_menu,
                       place=member.place)


def _as_elder() -> Select[Any]:
    """Every elder whose own phone a number is, as a registry match (the caller's number is
    for the caller to add)."""
    return (
        select(
            literal_column("0").label("rank"),
            literal_column("0").label("priority"),
            Elder.id.label("elder_id"),
            Elder.name.label("elder_name"),
            Elder.preferred_language.label("language"),
            cast(null(), String(16)).label("relation"),
            ElderPhone.kind.label("kind"),
            Elder.no_menu.label("no_menu"),
            Elder.province_code, Elder.city_code, Elder.county_code,
        )
        .join_from(ElderPhone, Elder, ElderPhone.elder_id == Elder.id)
    )


def _lookup_statement() -> Select[Any]:
    number = bindparam("number", type_=String)
    as_elder = _as_elder().where(ElderPhone.number_e164 == number)
    as_family = (
        select(
            literal_column("1"),
            FamilyContact.priority,
            Elder.id,
            Elder.name,
            Elder.preferred_language,
            FamilyContact.relation,
            cast(null(), String(16)),
            cast(false(), Boolean),
            Elder.province_code, Elder.city_code, Elder.county_code,
        )
        .join_from(FamilyContact, Elder, FamilyContact.elder_id == Elder.id)
        .where(FamilyContact.number_e164 == number)
    )
    found = union_all(as_elder, as_family).subquery("found")
    # the number asked for comes back first: a batch of lookups sorts its rows out by it
    return (
        select(cast(number, String).label("asked"), found)
        .order_by(found.c.rank, found.c.priority, found.c.elder_id)
        .limit(MAX_HOUSEHOLD)
    )


_LOOKUP = _lookup_statement()


class RegistryMatch(NamedTuple):
    """One registry row a number matches: an elder whose phone it is (rank 0), or a family
    contact of an elder (rank 1)."""

    rank: int
    priority: int
    elder_id: int
    elder_name: str
    language: str | None
    relation: str | None
    kind: str | None
    no_menu: bool
    province_code: str | None
    city_code: str | None
    county_code: str | None

    @property
    def place(self) -> Place:
        return Place(self.province_code, self.city_code, self.county_code)


async def _find(session: AsyncSession, number: str) -> list[RegistryMatch]:
    """The registry matches for ``number``, best first: every elder whose phone it is, else
    the family contacts.

    With a session bound to an engine (the usual case) the lookup reads committed data
    by the driver's shortest route (see fetch_committed_rows), on PostgreSQL together with
    the other callers' lookups of the moment (``dispatch/driver_batch.py``); a session bound
    to a connection runs it inside its own transaction.
    """
    bind = session.bind
    params = {"number": number}
    if isinstance(bind, AsyncEngine) and bind.dialect.driver == "asyncpg":
        rows = await batched_rows(bind, _LOOKUP, "number", params)
    elif isinstance(bind, AsyncEngine):
        rows = await fetch_committed_rows(bind, _LOOKUP, params)
    else:
        rows = (await (await session.connection()).execute(_LOOKUP, params)).all()
    return [RegistryMatch(*row[1:]) for row in rows]


async def identify(
    session: AsyncSession,
    raw_callerid: str | None,
    local_area_code: str,
    default_language: str = "zh",
) -> CallerIdentity:
    """Identify a caller from the raw caller ID Asterisk presented."""
    return await identify_number(session, normalize(raw_callerid, local_area_code),
                                 default_language)


async def identify_number(session: AsyncSession, number: str | None,
                          default_language: str = "zh") -> CallerIdentity:
    """Identify a caller from their number already normalised (None: withheld)."""
    if number is None:
        return CallerIdentity(
            CallerStatus.WITHHELD, None, None, None, default_language, None, False
        )
    return identity_of(number, await _find(session, number), default_language)


def identity_of(number: str, matches: Sequence[RegistryMatch], default_language: str
                ) -> CallerIdentity:
    """The caller on ``number`` from its registry matches, best first (no query)."""
    if not matches:
        return CallerIdentity(
            CallerStatus.UNKNOWN, number, None, None, default_language, None, False
        )
    row = matches[0]
    is_elder = row.rank == 0
    elders = [m for m in matches if m.rank == 0] if is_elder else []
    household = tuple(
        HouseholdMember(m.elder_id, m.elder_name, m.language or default_language,
                        bool(m.no_menu), m.place)
        for m in elders
    ) if len(elders) > 1 else ()
    return CallerIdentity(
        status=CallerStatus.ELDER if is_elder else CallerStatus.FAMILY,
        number=number,
        elder_id=row.elder_id,
        elder_name=row.elder_name,
        language=row.language or default_language,
        relation=None if is_elder else row.relation,
        handset=is_elder and any(m.kind == PhoneKind.HANDSET for m in elders),
        household=household,
        no_menu=any(bool(m.no_menu) for m in elders),
        place=row.place,
    )


async def handset_matches(session: AsyncSession) -> dict[str, list[RegistryMatch]]:
    """Every registered one-key handset number (E.164) -> its registry matches, as
    ``identify`` finds them (every elder whose phone the number is, oldest first). Reads
    only."""
    handsets = select(ElderPhone.number_e164).where(ElderPhone.kind == PhoneKind.HANDSET)
    rows = (await session.execute(
        _as_elder().add_columns(ElderPhone.number_e164)
        .where(ElderPhone.number_e164.in_(handsets.scalar_subquery()))
        .order_by(ElderPhone.number_e164, Elder.id))).all()
    await session.rollback()
    matches: dict[str, list[RegistryMatch]] = {}
    for *fields, number in rows:
        found = matches.setdefault(number, [])
        if len(found) < MAX_HOUSEHOLD:
            found.append(RegistryMatch(*fields))
    return matches


async def set_no_menu(session: AsyncSession, elder_id: int, no_menu: bool) -> bool:
    """Set or clear an elder's no-menu flag and commit; False if there is no such elder."""
    result = await session.execute(
        update(Elder).where(Elder.id == elder_id).values(no_menu=no_menu))
    await session.commit()
    return bool(result.rowcount)
