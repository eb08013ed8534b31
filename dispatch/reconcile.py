"""Do the month's settlements agree with the ledger, to the fen?

Every completed order with a vendor is charged exactly once; each county's month statements
add up to what the ledger owes the vendors for those months; each statement's voucher and
own-funds parts add up to its amount; every transaction sums to zero and every account's
balance is the sum of its postings. Anything else is a problem, named.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.ledger import drifted_accounts, unbalanced_transactions
from dispatch.models import (
    AccountKind,
    Elder,
    LedgerAccount,
    LedgerPosting,
    LedgerTransaction,
    OrderStatus,
    WorkOrder,
)
from dispatch.settlement import SETTLED_KINDS, Settlement, settlement


@dataclass
class Reconciliation:
    settlements: list[Settlement]
    completed_orders: int  # completed, with a vendor
    charged_orders: int  # distinct orders with a charge
    charges: int  # charge transactions
    ledger_payable_fen: int  # vendors' payable postings of charges and reversals
    unbalanced: list[int] = field(default_factory=list)
    drifted: list[int] = field(default_factory=list)

    @property
    def statements_fen(self) -> int:
        return sum(s.total_fen for s in self.settlements)

    @property
    def problems(self) -> list[str]:
        found = []
        if self.charged_orders != self.completed_orders:
            found.append(f"{self.completed_orders - self.charged_orders} of "
                         f"{self.completed_orders} completed orders not charged")
        if self.charges != self.charged_orders:
            found.append(f"{self.charges - self.charged_orders} orders charged twice")
        if self.statements_fen != self.ledger_payable_fen:
            found.append(f"statements total {self.statements_fen} fen, the ledger owes the "
                         f"vendors {self.ledger_payable_fen} fen")
        for month in self.settlements:
            for vendor in month.vendors:
                if vendor.vouchers_fen + vendor.own_fen != vendor.amount_fen:
                    found.append(f"{month.county} {month.month} vendor {vendor.vendor_id}: "
                                 f"vouchers and own funds do not add up to the amount")
        if self.unbalanced:
            found.append(f"{len(self.unbalanced)} transactions do not sum to zero")
        if self.drifted:
            found.append(f"{len(self.drifted)} balances differ from their postings")
        return found


async def settled_months(session: AsyncSession) -> list[tuple[str, str]]:
    """(county, month) of every charge or reversal in the ledger, in order."""
    rows = await session.execute(
        select(Elder.county_code, LedgerTransaction.month).distinct()
        .join(WorkOrder, WorkOrder.id == LedgerTransaction.order_id)
        .join(Elder, Elder.id == WorkOrder.elder_id)
        .where(LedgerTransaction.kind.in_(SETTLED_KINDS))
        .order_by(Elder.county_code, LedgerTransaction.month))
    return [(county or "", month) for county, month in rows]


async def reconcile(session: AsyncSession, deduction_fen: int) -> Reconciliation:
    """Every month in the ledger, settled and checked against it."""
    months = [await settlement(session, county, month, deduction_fen)
              for county, month in await settled_months(session)]
    completed = await session.scalar(select(func.count()).select_from(WorkOrder).where(
        WorkOrder.status == OrderStatus.COMPLETED, WorkOrder.vendor_id.is_not(None)))
    charges = (select(LedgerTransaction.order_id)
               .where(LedgerTransaction.kind == "charge").subquery())
    charged = await session.scalar(select(func.count(func.distinct(charges.c.order_id))))
    charge_count = await session.scalar(select(func.count()).select_from(charges))
    payable = await session.scalar(
        select(func.coalesce(func.sum(LedgerPosting.amount_fen), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
        .where(LedgerAccount.kind == AccountKind.VENDOR_PAYABLE,
               LedgerTransaction.kind.in_(SETTLED_KINDS)))
    return Reconciliation(
        settlements=months, completed_orders=int(completed or 0),
        charged_orders=int(charged or 0), charges=int(charge_count or 0),
        ledger_payable_fen=int(payable or 0),
        unbalanced=list(await unbalanced_transactions(session)),
        drifted=list(await drifted_accounts(session)))
