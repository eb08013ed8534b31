"""Console accounts in the database: creation, lookup, and sign-in with its throttle.

The throttle counts failed logins of the last minute by name and by address, in the
database, so every console process shares it: after ``limit`` failures the next attempt is
refused without even checking the password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.accounts import Account, Role
from dispatch.audit import Actor, audit_row
from dispatch.models import ConsoleAccount, LoginFailure
from dispatch.passwords import hash_password, verify_password
from dispatch.regions import RegionLevel, RegionScope

THROTTLE_WINDOW = timedelta(minutes=1)
NAME_MAX = 64
SEAT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class AccountError(ValueError):
    """The account cannot be created: the message says why."""


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a login: the account, or why not (``throttled`` or a bad password)."""

    account: Account | None
    throttled: bool = False


def _account(row: ConsoleAccount) -> Account:
    return Account(id=row.id, name=row.name, role=Role(row.role),
                   scope=RegionScope(RegionLevel(row.region_level), row.region_code),
                   seat=row.seat)


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable() or " " in name:
        raise AccountError(f"an account name is 1 to {NAME_MAX} printable characters, "
                           "without spaces")
    return name


def check_seat(seat: str | None) -> str | None:
    if seat is None:
        return None
    if not seat or len(seat) > 40 or not set(seat) <= SEAT_CHARS:
        raise AccountError("a seat is a PJSIP endpoint name: letters, digits, - and _")
    return seat


async def add_account(session: AsyncSession, name: str, role: Role | str, scope: RegionScope,
                      password: str, at: datetime, seat: str | None = None) -> Account:
    """Create an account (COMMIT); AccountError if the name is taken or a field is bad."""
    name, seat, role = check_name(name), check_seat(seat), Role(role)
    row = ConsoleAccount(name=name, role=role.value, region_level=scope.level.value,
                         region_code=scope.code, seat=seat,
                         password_hash=hash_password(password), created_at=at)
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise AccountError(f"an account named {name!r} exists already") from None
    return _account(row)


async def disable_account(session: AsyncSession, name: str, at: datetime) -> bool:
    """Take an account's access away at once (its open sessions too); False if no such
    enabled account. COMMITs."""
    moved = await session.execute(
        update(ConsoleAccount).where(ConsoleAccount.name == name.strip(),
                                     ConsoleAccount.disabled_at.is_(None))
        .values(disabled_at=at))
    await session.commit()
    return bool(moved.rowcount)


async def account_by_id(session: AsyncSession, account_id: int) -> Account | None:
    """The enabled account with this id, or None."""
    row = await session.get(ConsoleAccount, account_id)
    return None if row is None or row.disabled_at is not None else _account(row)


async def sign_in(session: AsyncSession, name: str, password: str, address: str,
                  at: datetime, limit: int) -> SignIn:
    """Check a login and write its audit row (and a failure for the throttle); COMMITs."""
    name, address = name.strip()[:NAME_MAX], address[:64]
    since = at - THROTTLE_WINDOW
    failures = await session.scalar(
        select(func.count()).select_from(LoginFailure).where(
            LoginFailure.at > since,
            or_(LoginFailure.name == name, LoginFailure.address == address)))
    if (failures or 0) >= limit:
        await _finish(session, Actor(None, name, address), "login_throttled", at)
        return SignIn(None, throttled=True)
    row = await session.scalar(select(ConsoleAccount).where(ConsoleAccount.name == name))
    usable = row if row is not None and row.disabled_at is None else None
    if verify_password(usable.password_hash if usable else None, password) and usable:
        await _finish(session, Actor(usable.id, usable.name, address), "login", at)
        return SignIn(_account(usable))
    await session.execute(insert(LoginFailure), {"name": name, "address": address, "at": at})
    await session.execute(delete(LoginFailure).where(LoginFailure.at < since - THROTTLE_WINDOW))
    await _finish(session, Actor(row.id if row else None, name, address), "login_failed", at)
    return SignIn(None)


async def _finish(session: AsyncSession, actor: Actor, action: str, at: datetime) -> None:
    statement, params = audit_row(actor, action, at)
    await session.execute(statement, params)
    await session.commit()
