"""Caller identification: who is calling, and for which elder.

A number registered as an elder's phone identifies that elder (and flags a one-key
handset line). Otherwise a family contact's number identifies the caller as acting for
that elder. When one number is the contact of several elders (a child of two registered
parents), the elder for whom it has the best (lowest) contact priority wins, then the
lowest elder id: the choice is deterministic. An elder phone always beats a family phone.
Both cases are answered by a single indexed query.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import Select, String, bindparam, cast, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from dispatch.db import fetch_committed_row
from dispatch.models import Elder, ElderPhone, FamilyContact, PhoneKind
from dispatch.phones import normalize


class CallerStatus(StrEnum):
    ELDER = "elder"
    FAMILY = "family"
    UNKNOWN = "unknown"
    WITHHELD = "withheld"  # no usable number: withheld, anonymous or garbage caller ID


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    status: CallerStatus
    number: str | None  # normalized E.164, None if withheld
    elder_id: int | None
    elder_name: str | None
    language: str  # the elder's preferred language (default language if no elder)
    relation: str | None  # for FAMILY: e.g. "女儿"
    handset: bool  # the call came from a registered one-key handset line


def _lookup_statement() -> Select[Any]:
    number = bindparam("number", type_=String)
    as_elder = (
        select(
            literal_column("0").label("rank"),
            literal_column("0").label("priority"),
            Elder.id.label("elder_id"),
            Elder.name.label("elder_name"),
            Elder.preferred_language.label("language"),
            cast(null(), String(16)).label("relation"),
            ElderPhone.kind.label("kind"),
        )
        .join_from(ElderPhone, Elder, ElderPhone.elder_id == Elder.id)
        .where(ElderPhone.number_e164 == number)
    )
    as_family = (
        select(
            literal_column("1"),
            FamilyContact.priority,
            Elder.id,
            Elder.name,
            Elder.preferred_language,
            FamilyContact.relation,
            cast(null(), String(16)),
        )
        .join_from(FamilyContact, Elder, FamilyContact.elder_id == Elder.id)
        .where(FamilyContact.number_e164 == number)
    )
    found = union_all(as_elder, as_family).subquery("found")
    return (
        select(found)
        .order_by(found.c.rank, found.c.priority, found.c.elder_id)
        .limit(1)
    )


_LOOKUP = _lookup_statement()


class _Match(NamedTuple):
    rank: int
    priority: int
    elder_id: int
    elder_name: str
    language: str | None
    relation: str | None
    kind: str | None


async def _find(session: AsyncSession, number: str) -> _Match | None:
    """The best registry match for ``number``.

    With a session bound to an engine (the usual case) the lookup reads committed data
    by the driver's shortest route (see fetch_committed_row); a session bound to a
    connection runs it inside its own transaction.
    """
    bind = session.bind
    if isinstance(bind, AsyncEngine):
        row = await fetch_committed_row(bind, _LOOKUP, {"number": number})
    else:
        row = (await (await session.connection()).execute(_LOOKUP, {"number": number})).first()
    return _Match(*row) if row else None


async def identify(
    session: AsyncSession,
    raw_callerid: str | None,
    local_area_code: str,
    default_language: str = "zh",
) -> CallerIdentity:
    """Identify a caller from the raw caller ID Asterisk presented."""
    number = normalize(raw_callerid, local_area_code)
    if number is None:
        return CallerIdentity(
            CallerStatus.WITHHELD, None, None, None, default_language, None, False
        )
    row = await _find(session, number)
    if row is None:
        return CallerIdentity(
            CallerStatus.UNKNOWN, number, None, None, default_language, None, False
        )
    is_elder = row.rank == 0
    return CallerIdentity(
        status=CallerStatus.ELDER if is_elder else CallerStatus.FAMILY,
        number=number,
        elder_id=row.elder_id,
        elder_name=row.elder_name,
        language=row.language or default_language,
        relation=None if is_elder else row.relation,
        handset=is_elder and row.kind == PhoneKind.HANDSET,
    )
