"""The monthly vouchers: on the first day of a month every elder whose subsidy category has
terms is credited that month's vouchers from the subsidy fund; where unused vouchers do not
carry over, what is left of the last month's lapses back to the fund first. Each is a
ledger transaction keyed by month and elder, so a run repeated, or run by two engines,
credits each elder once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, cast, exists, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.charging import SubsidyRule
from dispatch.ledger import AccountKey, balance, post
from dispatch.models import AccountKind, Elder, LedgerTransaction

FUND = AccountKey(AccountKind.SUBSIDY_FUND)


def voucher_key(month: str, elder_id: int) -> str:
    return f"voucher:{month}:{elder_id}"


@dataclass(frozen=True)
class Uncredited:
    """An elder whose category has vouchers and who has not been credited the month yet."""

    elder_id: int
    category: str
    county: str | None


async def uncredited(session: AsyncSession, month: str, rules: dict[str, SubsidyRule],
                     limit: int = 500) -> list[Uncredited]:
    """Up to ``limit`` elders still owed ``month``'s vouchers, by id; reads only."""
    eligible = [category for category, rule in rules.items() if rule.voucher_fen > 0]
    if not eligible:
        return []
    credited = exists().where(LedgerTransaction.business_key == (
        literal(f"voucher:{month}:") + cast(Elder.id, String)))
    rows = (await session.execute(
        select(Elder.id, Elder.subsidy_category, Elder.county_code)
        .where(Elder.subsidy_category.in_(eligible), ~credited)
        .order_by(Elder.id).limit(limit))).all()
    await session.rollback()
    return [Uncredited(int(elder_id), getattr(category, "value", category), county)
            for elder_id, category, county in rows]


async def credit_elder(session: AsyncSession, month: str, rules: dict[str, SubsidyRule],
                       elder: Uncredited, at: datetime) -> None:
    """Credit one elder ``month``'s vouchers, lapsing what is left first where vouchers do
    not carry over; once per elder and month whoever runs it. COMMITs."""
    rule = rules[elder.category]
    subsidy = AccountKey(AccountKind.ELDER_SUBSIDY, elder.elder_id)
    left = await balance(session, subsidy)
    if not rule.carry_over and left > 0:
        await post(session, f"lapse:{month}:{elder.elder_id}", "lapse", at,
                   {subsidy: -left, FUND: left}, month=month, county=elder.county)
    await post(session, voucher_key(month, elder.elder_id), "voucher", at,
               {FUND: -rule.voucher_fen, subsidy: rule.voucher_fen}, month=month,
               county=elder.county)


async def credit_month(session: AsyncSession, month: str, rules: dict[str, SubsidyRule],
                       at: datetime, limit: int = 500) -> int:
    """Credit ``month``'s vouchers to up to ``limit`` elders not credited yet, in one
    session; how many were credited. COMMITs each elder."""
    elders = await uncredited(session, month, rules, limit)
    for elder in elders:
        await credit_elder(session, month, rules, elder, at)
    return len(elders)
