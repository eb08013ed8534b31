"""Month close per county: the month is frozen (nothing more is posted into it), and the
ledger gives each vendor's statement and the county's subsidy report by category.

A vendor's statement counts the orders charged to the month (charges less reversals), the
amount, its voucher and own-funds parts, and a deduction per upheld complaint
(``[money] upheld_complaint_deduction_yuan``). The subsidy report sums, by subsidy category,
the elders served and the vouchers and own funds they spent. A month still in progress, or
already closed, cannot be closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.ledger import LedgerError, lock_month, month_closed, month_of
from dispatch.models import (
    AccountKind,
    Complaint,
    Elder,
    LedgerAccount,
    LedgerMonthClose,
    LedgerPosting,
    LedgerTransaction,
    Vendor,
    WorkOrder,
)

# the ledger transactions a month's settlement counts
CHARGE, REVERSAL = "charge", "reversal"
SETTLED_KINDS = (CHARGE, REVERSAL)


@dataclass
class VendorStatement:
    vendor_id: int
    vendor: str
    orders: int = 0
    amount_fen: int = 0
    vouchers_fen: int = 0
    own_fen: int = 0
    upheld_complaints: int = 0
    deduction_fen: int = 0

    @property
    def payable_fen(self) -> int:
        return self.amount_fen - self.deduction_fen


@dataclass
class CategoryLine:
    category: str
    elders: int = 0
    orders: int = 0
    vouchers_fen: int = 0
    own_fen: int = 0


@dataclass
class Settlement:
    county: str
    month: str
    closed_at: datetime | None
    vendors: list[VendorStatement] = field(default_factory=list)
    categories: list[CategoryLine] = field(default_factory=list)

    @property
    def total_fen(self) -> int:
        return sum(v.amount_fen for v in self.vendors)


async def settlement(session: AsyncSession, county: str, month: str, deduction_fen: int
                     ) -> Settlement:
    """The county's month as the ledger has it (closed or not)."""
    close = await session.scalar(select(LedgerMonthClose.closed_at).where(
        LedgerMonthClose.county_code == county, LedgerMonthClose.month == month))
    in_month = (
        select().select_from(LedgerTransaction)
        .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
        .join(WorkOrder, WorkOrder.id == LedgerTransaction.order_id)
        .join(Elder, Elder.id == WorkOrder.elder_id)
        .where(LedgerTransaction.month == month, Elder.county_code == county,
               LedgerTransaction.kind.in_(SETTLED_KINDS)))
    # Sums per vendor, category and kind, made by the database: the rows read are as many
    # as vendors x categories, whatever the number of orders, so memory stays flat.
    sums = await session.execute(
        in_month.add_columns(WorkOrder.vendor_id, Vendor.name, Elder.subsidy_category,
                             LedgerTransaction.kind, LedgerAccount.kind,
                             func.sum(LedgerPosting.amount_fen), func.count())
        .join(Vendor, Vendor.id == WorkOrder.vendor_id)
        .group_by(WorkOrder.vendor_id, Vendor.name, Elder.subsidy_category,
                  LedgerTransaction.kind, LedgerAccount.kind))
    vendors: dict[int, VendorStatement] = {}
    categories: dict[str, CategoryLine] = {}
    for vendor_id, name, category, txn_kind, account, amount, legs in sums:
        statement = vendors.setdefault(vendor_id, VendorStatement(vendor_id, name))
        line = categories.setdefault(getattr(category, "value", category),
                                     CategoryLine(getattr(category, "value", category)))
        amount = int(amount)
        if account is AccountKind.VENDOR_PAYABLE:  # one such leg per charge or reversal
            statement.amount_fen += amount
            step = int(legs) if txn_kind == "charge" else -int(legs)
            statement.orders += step
            line.orders += step
        elif account is AccountKind.ELDER_SUBSIDY:
            statement.vouchers_fen -= amount
            line.vouchers_fen -= amount
        elif account is AccountKind.ELDER_OWN:
            statement.own_fen -= amount
            line.own_fen -= amount
    served = await session.execute(
        in_month.add_columns(Elder.subsidy_category, func.count(WorkOrder.elder_id.distinct()))
        .group_by(Elder.subsidy_category))
    for category, elders in served:
        line = categories.get(getattr(category, "value", category))
        if line is not None:
            line.elders = int(elders)
    upheld = dict((await session.execute(
        select(Complaint.vendor_id, func.count())
        .join(WorkOrder, WorkOrder.id == Complaint.order_id)
        .join(Elder, Elder.id == WorkOrder.elder_id)
        .join(LedgerTransaction, (LedgerTransaction.order_id == WorkOrder.id)
              & (LedgerTransaction.kind == "charge"))
        .where(Complaint.upheld.is_(True), Elder.county_code == county,
               LedgerTransaction.month == month)
        .group_by(Complaint.vendor_id))).all())
    for vendor_id, count in upheld.items():
        if vendor_id in vendors:
            vendors[vendor_id].upheld_complaints = int(count)
            vendors[vendor_id].deduction_fen = int(count) * deduction_fen
    return Settlement(county, month, close,
                      sorted(vendors.values(), key=lambda v: v.vendor_id),
                      sorted(categories.values(), key=lambda c: c.category))


async def close_month(session: AsyncSession, county: str, month: str, by: str, at: datetime,
                      tz: ZoneInfo, deduction_fen: int) -> Settlement:
    """Freeze ``county``'s ``month`` and give its settlement; LedgerError if the month is
    still in progress (or in the future), malformed, or closed already. COMMITs."""
    try:
        year, number = (int(part) for part in month.split("-"))
        valid = len(month) == 7 and 1 <= number <= 12 and year > 1900
    except ValueError:
        valid = False
    if not valid:
        raise LedgerError(f"{month!r} is not a month (YYYY-MM)")
    if month >= month_of(at, tz):
        raise LedgerError(f"{month} is still in progress (or to come): it cannot be closed")
    await lock_month(session, county, month)
    if await month_closed(session, county, month):
        await session.rollback()
        raise LedgerError(f"{month} is already closed for county {county}")
    session.add(LedgerMonthClose(county_code=county, month=month, closed_at=at,
                                 closed_by=by[:64]))
    await session.commit()
    return await settlement(session, county, month, deduction_fen)
