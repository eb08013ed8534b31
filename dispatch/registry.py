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

from sqlalchemy import Dialect, String, bindparam, cast, literal_column, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from dispatch.db import sqlite_reader
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


def _lookup_statement():  # type: ignore[no-untyped-def]
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


@dataclass(frozen=True, slots=True)
class _DriverQuery:
    """The lookup compiled once for a dialect whose driver takes positional parameters."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]

    def args(self, number: str) -> list[Any]:
        return [number if name == "number" else self.defaults[name] for name in self.names]


_DRIVER_QUERIES: dict[tuple[str, str], _DriverQuery] = {}


def _driver_query(dialect: Dialect) -> _DriverQuery:
    key = (dialect.name, dialect.driver)
    query = _DRIVER_QUERIES.get(key)
    if query is None:
        compiled = _LOOKUP.compile(dialect=dialect)
        query = _DRIVER_QUERIES[key] = _DriverQuery(
            compiled.string,
            tuple(compiled.positiontup or ()),
            compiled.construct_params({"number": ""}),
        )
    return query


async def _find(session: AsyncSession, number: str) -> _Match | None:
    """The best registry match for ``number``, by the cheapest route the session allows.

    With a session bound to an engine, the lookup reads committed data outside the
    session's transaction, straight through the driver with SQL compiled once: on SQLite
    through a query-only sqlite3 connection in this thread (microseconds, where aiosqlite
    would hand each call to its worker thread and back), on PostgreSQL through a pooled
    asyncpg connection in one round trip (no BEGIN/ROLLBACK).
    """
    bind = session.bind
    if isinstance(bind, AsyncEngine):
        query = _driver_query(bind.dialect)
        reader = sqlite_reader(bind)
        if reader is not None:
            row = reader.execute(query.sql, query.args(number)).fetchone()
            return _Match(*row) if row else None
        if bind.dialect.driver == "asyncpg":
            async with bind.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                row = await driver.fetchrow(query.sql, *query.args(number))
            return _Match(*row) if row else None
    conn = await session.connection()
    row = (await conn.execute(_LOOKUP, {"number": number})).first()
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
