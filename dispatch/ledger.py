"""The double-entry ledger: money as whole fen (``int``), never a float.

A transaction is a business event with a unique ``business_key`` and postings that sum to
zero. ``post`` writes it once: the same key posted again (by this engine or another at the
same moment, on PostgreSQL too) returns the transaction already stored and adds nothing.
Each account keeps its balance beside its postings, changed in the same database
transaction, so a balance is always the sum of its postings. Nothing is updated in place or
deleted: ``reverse`` writes the mirror image of a transaction under its own key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NewType
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.db import insert_ignoring
from dispatch.models import (
    AccountKind,
    LedgerAccount,
    LedgerMonthClose,
    LedgerPosting,
    LedgerTransaction,
)

Fen = NewType("Fen", int)
FEN_PER_YUAN = 100


class LedgerError(ValueError):
    """A transaction that cannot be posted; nothing of it was written."""


def to_fen(yuan: Decimal | str | int) -> Fen:
    """Yuan (a Decimal, a decimal string or whole yuan) as fen; refuses floats and
    fractions of a fen."""
    if isinstance(yuan, float | bool):
        raise LedgerError(f"money must not be a float: {yuan!r}")
    amount = Decimal(yuan) * FEN_PER_YUAN
    if amount != amount.to_integral_value():
        raise LedgerError(f"{yuan} yuan is not a whole number of fen")
    return Fen(int(amount))


def yuan(fen: int) -> Decimal:
    """Fen as yuan, exactly."""
    return Decimal(fen) / FEN_PER_YUAN


PLATFORM = 0  # the owner of the platform's own accounts (the subsidy fund, deposits)


@dataclass(frozen=True, slots=True)
class AccountKey:
    kind: AccountKind
    owner_id: int = PLATFORM  # the elder's or vendor's id


@dataclass(frozen=True)
class Posted:
    """The transaction stored under a key; ``new`` is False when it was there already."""

    transaction_id: int
    new: bool


def month_of(at: datetime, tz: ZoneInfo) -> str:
    return f"{at.astimezone(tz):%Y-%m}"


async def account_id(session: AsyncSession, key: AccountKey) -> int:
    """The account's id, opened (balance 0) the first time it is asked for, once however
    many engines ask at the same moment."""
    where = (LedgerAccount.kind == key.kind, LedgerAccount.owner_id == key.owner_id)
    found = await session.scalar(select(LedgerAccount.id).where(*where))
    if found is None:
        await session.execute(
            insert_ignoring(LedgerAccount.__table__, session.bind.dialect, ("kind", "owner_id")),
            [{"kind": key.kind, "owner_id": key.owner_id, "balance_fen": 0}])
        found = await session.scalar(select(LedgerAccount.id).where(*where))
    return int(found)


async def lock_month(session: AsyncSession, county: str, month: str) -> None:
    """Serialise posting into a county's month with closing it (PostgreSQL; SQLite has one
    writer anyway): held to the end of the transaction."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                              {"key": f"ledger-month:{county}:{month}"})


async def month_closed(session: AsyncSession, county: str, month: str) -> bool:
    return await session.scalar(select(LedgerMonthClose.id).where(
        LedgerMonthClose.county_code == county, LedgerMonthClose.month == month)) is not None


async def post(session: AsyncSession, business_key: str, kind: str, at: datetime,
               postings: Mapping[AccountKey, int], *, month: str,
               order_id: int | None = None, memo: str | None = None,
               reverses_id: int | None = None, county: str | None = None) -> Posted:
    """Write one balanced transaction and its postings once; COMMITs. LedgerError (nothing
    written) if the amounts are not whole fen or do not sum to zero, or if ``county``'s
    ``month`` is closed."""
    legs = {key: amount for key, amount in postings.items() if amount != 0}
    if any(not isinstance(amount, int) or isinstance(amount, bool) for amount in legs.values()):
        raise LedgerError("every amount must be whole fen (int)")
    if sum(legs.values()) != 0:
        raise LedgerError(f"{business_key}: postings sum to {sum(legs.values())} fen, not 0")
    if not business_key or len(business_key) > 80:
        raise LedgerError("a transaction needs a business key of at most 80 characters")
    existing = await _existing(session, business_key)
    if existing is not None:
        return Posted(existing, new=False)
    if county is not None:
        await lock_month(session, county, month)
        if await month_closed(session, county, month):
            await session.rollback()
            raise LedgerError(f"{month} is closed for county {county}: nothing is posted "
                              f"into it")
    try:
        accounts = {key: await account_id(session, key) for key in legs}
        txn = LedgerTransaction(business_key=business_key, kind=kind[:24], at=at, month=month,
                                order_id=order_id, memo=memo[:200] if memo else None,
                                reverses_id=reverses_id)
        session.add(txn)
        await session.flush()
        for key, amount in sorted(legs.items(), key=lambda item: accounts[item[0]]):
            session.add(LedgerPosting(transaction_id=txn.id, account_id=accounts[key],
                                      amount_fen=amount))
            await session.execute(update(LedgerAccount)
                                  .where(LedgerAccount.id == accounts[key])
                                  .values(balance_fen=LedgerAccount.balance_fen + amount))
        await session.commit()
        return Posted(int(txn.id), new=True)
    except IntegrityError:  # another engine posted the same key first
        await session.rollback()
        existing = await _existing(session, business_key)
        if existing is None:
            raise
        return Posted(existing, new=False)


async def _existing(session: AsyncSession, business_key: str) -> int | None:
    found = await session.scalar(select(LedgerTransaction.id)
                                 .where(LedgerTransaction.business_key == business_key))
    return None if found is None else int(found)


async def reverse(session: AsyncSession, business_key: str, at: datetime, *, month: str,
                  memo: str | None = None, county: str | None = None) -> Posted:
    """Post the mirror image of the transaction under ``business_key`` (key
    ``reverse:<key>``) into ``month``, once. LedgerError if there is no such transaction,
    or if ``county``'s ``month`` is closed (a correction goes to an open month)."""
    original = await session.scalar(select(LedgerTransaction)
                                    .where(LedgerTransaction.business_key == business_key))
    if original is None:
        raise LedgerError(f"no transaction {business_key!r} to reverse")
    legs = (await session.execute(
        select(LedgerAccount.kind, LedgerAccount.owner_id, LedgerPosting.amount_fen)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .where(LedgerPosting.transaction_id == original.id))).all()
    mirror: dict[AccountKey, int] = {}
    for kind, owner_id, amount in legs:
        key = AccountKey(kind, owner_id)
        mirror[key] = mirror.get(key, 0) - int(amount)
    return await post(session, f"reverse:{business_key}"[:80], "reversal", at, mirror,
                      month=month, order_id=original.order_id, memo=memo,
                      reverses_id=original.id, county=county)


async def balance(session: AsyncSession, key: AccountKey) -> int:
    """The account's balance in fen (0 for an account never used)."""
    found = await session.scalar(select(LedgerAccount.balance_fen).where(
        LedgerAccount.kind == key.kind, LedgerAccount.owner_id == key.owner_id))
    return int(found or 0)


async def unbalanced_transactions(session: AsyncSession) -> Sequence[int]:
    """Transactions whose postings do not sum to zero (none, unless the ledger is broken)."""
    rows = await session.execute(
        select(LedgerPosting.transaction_id).group_by(LedgerPosting.transaction_id)
        .having(func.sum(LedgerPosting.amount_fen) != 0))
    return [int(row[0]) for row in rows]


async def drifted_accounts(session: AsyncSession) -> Sequence[int]:
    """Accounts whose kept balance differs from the sum of their postings (none, unless the
    ledger is broken)."""
    sums = (select(LedgerPosting.account_id, func.sum(LedgerPosting.amount_fen).label("total"))
            .group_by(LedgerPosting.account_id).subquery())
    rows = await session.execute(
        select(LedgerAccount.id).outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.balance_fen != func.coalesce(sums.c.total, 0)))
    return [int(row[0]) for row in rows]
