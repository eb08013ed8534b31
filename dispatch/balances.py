"""The balances read out by phone: an elder's service card, a vendor's month so far.

An elder's card is their vouchers account (this month's subsidy left, what carried over
included) and their own-funds account (below zero: owed). An elder with neither account,
never credited nor charged, has no card. A vendor's month is what the ledger holds for it
in that month: the orders charged (less those reversed), and the amount to be settled,
less the deductions for upheld complaints, as the month's statement counts them
(dispatch/settlement.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.models import (
    AccountKind,
    Complaint,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
)
from dispatch.settlement import CHARGE, SETTLED_KINDS


@dataclass(frozen=True, slots=True)
class CardBalances:
    """An elder's service card: vouchers left and own funds (negative: owed), in fen."""

    vouchers_fen: int
    own_fen: int


@dataclass(frozen=True, slots=True)
class VendorMonth:
    """A vendor's month so far: orders charged, amount to be settled (fen)."""

    month: str
    orders: int
    amount_fen: int
    deduction_fen: int

    @property
    def payable_fen(self) -> int:
        return self.amount_fen - self.deduction_fen


async def card_balances(session: AsyncSession, elder_id: int) -> CardBalances | None:
    """The elder's card, or None if they have none (no account ever opened)."""
    rows = dict((await session.execute(
        select(LedgerAccount.kind, LedgerAccount.balance_fen).where(
            LedgerAccount.owner_id == elder_id,
            LedgerAccount.kind.in_((AccountKind.ELDER_SUBSIDY, AccountKind.ELDER_OWN))))).all())
    if not rows:
        return None
    return CardBalances(vouchers_fen=int(rows.get(AccountKind.ELDER_SUBSIDY, 0)),
                        own_fen=int(rows.get(AccountKind.ELDER_OWN, 0)))


async def vendor_month(session: AsyncSession, vendor_id: int, month: str,
                       deduction_per_complaint_fen: int) -> VendorMonth:
    """What ``vendor_id`` is owed for ``month`` (YYYY-MM) so far, in every county."""
    legs = (select().select_from(LedgerPosting)
            .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
            .where(LedgerAccount.kind == AccountKind.VENDOR_PAYABLE,
                   LedgerAccount.owner_id == vendor_id, LedgerTransaction.month == month,
                   LedgerTransaction.kind.in_(SETTLED_KINDS)))
    orders, amount = (await session.execute(legs.add_columns(
        func.coalesce(func.sum(case((LedgerTransaction.kind == CHARGE, 1), else_=-1)), 0),
        func.coalesce(func.sum(LedgerPosting.amount_fen), 0)))).one()
    upheld = await session.scalar(
        select(func.count()).select_from(Complaint)
        .join(LedgerTransaction, (LedgerTransaction.order_id == Complaint.order_id)
              & (LedgerTransaction.kind == CHARGE))
        .where(Complaint.vendor_id == vendor_id, Complaint.upheld.is_(True),
               LedgerTransaction.month == month))
    return VendorMonth(month=month, orders=int(orders), amount_fen=int(amount),
                       deduction_fen=int(upheld or 0) * deduction_per_complaint_fen)
