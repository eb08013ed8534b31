"""Tariffs, subsidy rules, and the charge of a completed order.

A completed order costs the vendor's price valid on the day it was completed (local time).
The elder's subsidy category's rule says which share of the price the vouchers pay; the
vouchers pay that share up to what is left of them, and the elder's own funds the rest. An
elder without enough own funds is still served: the own-funds account goes below zero, the
shortfall is owed and reported, never refused at the door. The charge is posted once per
order (``charge:order:<id>``), whichever engine sees the completion.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.ledger import (
    AccountKey,
    LedgerError,
    Posted,
    balance,
    month_closed,
    month_of,
    post,
)
from dispatch.models import (
    AccountKind,
    Elder,
    LedgerTransaction,
    OrderStatus,
    ServiceType,
    VendorTariff,
    WorkOrder,
)


class ChargeError(LedgerError):
    """An order that cannot be charged (no tariff, no rule, not completed); nothing posted."""


@dataclass(frozen=True)
class SubsidyRule:
    """One subsidy category's terms: the monthly vouchers (fen), whether unused vouchers
    carry over to the next month, and the share of each price the vouchers pay."""

    voucher_fen: int
    carry_over: bool
    share: Decimal

    def __post_init__(self) -> None:
        if self.voucher_fen < 0:
            raise ChargeError("a monthly voucher amount cannot be negative")
        if not Decimal(0) <= self.share <= Decimal(1):
            raise ChargeError(f"a subsidy share must be between 0 and 1, not {self.share}")


def _overlapping(vendor_id: int, service: ServiceType, start: date, end: date | None) -> object:
    return and_(VendorTariff.vendor_id == vendor_id, VendorTariff.service == service,
                or_(VendorTariff.valid_until.is_(None), VendorTariff.valid_until >= start),
                True if end is None else VendorTariff.valid_from <= end)


async def add_tariff(session: AsyncSession, vendor_id: int, service: ServiceType,
                     price_fen: int | None, valid_from: date, valid_until: date | None
                     ) -> int:
    """A vendor's price of a service over a period; ChargeError (nothing written) for a
    missing or negative price, an empty period, or one overlapping a price already set.
    COMMITs."""
    if price_fen is None or isinstance(price_fen, bool) or not isinstance(price_fen, int):
        raise ChargeError("a tariff needs its price in whole fen")
    if price_fen < 0:
        raise ChargeError(f"a price cannot be negative: {price_fen} fen")
    if valid_until is not None and valid_until < valid_from:
        raise ChargeError("a tariff's validity ends before it starts")
    clash = await session.scalar(select(VendorTariff.id).where(
        _overlapping(vendor_id, service, valid_from, valid_until)).limit(1))
    if clash is not None:
        raise ChargeError(f"vendor {vendor_id}'s {service.value} price already covers part "
                          f"of {valid_from}..{valid_until or 'open'}")
    tariff = VendorTariff(vendor_id=vendor_id, service=service, price_fen=price_fen,
                          valid_from=valid_from, valid_until=valid_until)
    session.add(tariff)
    await session.commit()
    return int(tariff.id)


async def price_on(session: AsyncSession, vendor_id: int, service: ServiceType, day: date
                   ) -> int | None:
    """The vendor's price of ``service`` valid on ``day`` (None if none is)."""
    found = await session.scalar(select(VendorTariff.price_fen).where(
        _overlapping(vendor_id, service, day, day)).limit(1))
    return None if found is None else int(found)


def split(price_fen: int, rule: SubsidyRule, vouchers_left_fen: int) -> tuple[int, int]:
    """(vouchers, own funds) of a price: the rule's share, rounded to the fen, within what
    is left of the vouchers; the rest is the elder's."""
    wanted = int((Decimal(price_fen) * rule.share).quantize(Decimal(1), ROUND_HALF_UP))
    vouchers = max(0, min(wanted, vouchers_left_fen))
    return vouchers, price_fen - vouchers


async def charge_order(session: AsyncSession, order_id: int, rules: dict[str, SubsidyRule],
                       tz: ZoneInfo, at: datetime) -> Posted:
    """Post the charge of a completed order once (ChargeError if it cannot be charged:
    not completed, no vendor, no price that day, no rule for the elder's category)."""
    row = (await session.execute(
        select(WorkOrder.status, WorkOrder.vendor_id, WorkOrder.service, WorkOrder.completed_at,
               WorkOrder.elder_id, Elder.subsidy_category, Elder.county_code)
        .join(Elder, Elder.id == WorkOrder.elder_id).where(WorkOrder.id == order_id))).first()
    if row is None or row.status is not OrderStatus.COMPLETED or row.completed_at is None:
        raise ChargeError(f"order {order_id} is not completed")
    if row.vendor_id is None:
        raise ChargeError(f"order {order_id} has no vendor to pay")
    category = getattr(row.subsidy_category, "value", row.subsidy_category)
    rule = rules.get(category)
    if rule is None:
        raise ChargeError(f"no subsidy rule for category {category!r}")
    day = row.completed_at.astimezone(tz).date()
    price = await price_on(session, row.vendor_id, row.service, day)
    if price is None:
        raise ChargeError(f"vendor {row.vendor_id} has no {row.service.value} price on {day}")
    subsidy = AccountKey(AccountKind.ELDER_SUBSIDY, row.elder_id)
    vouchers, own = split(price, rule, await balance(session, subsidy))
    county = row.county_code or ""
    month = month_of(row.completed_at, tz)
    if await month_closed(session, county, month):
        month = month_of(at, tz)  # completed in a month since closed: settled in this one
    await session.rollback()  # end the read; post() writes in a transaction of its own
    return await post(
        session, f"charge:order:{order_id}", "charge", at,
        {subsidy: -vouchers, AccountKey(AccountKind.ELDER_OWN, row.elder_id): -own,
         AccountKey(AccountKind.VENDOR_PAYABLE, row.vendor_id): price},
        month=month, order_id=order_id, county=county,
        memo=f"{row.service.value} {price} fen: vouchers {vouchers}, own {own}")


async def uncharged_orders(session: AsyncSession, since: datetime, limit: int = 500,
                           skip: Collection[int] = ()) -> list[int]:
    """Orders completed since ``since`` with a vendor and no charge yet, oldest first,
    leaving out ``skip`` (charges refused a moment ago, so they cannot fill the batch)."""
    charged = select(LedgerTransaction.order_id).where(
        LedgerTransaction.kind == "charge", LedgerTransaction.order_id.is_not(None))
    return [int(i) for i in (await session.scalars(
        select(WorkOrder.id).where(WorkOrder.status == OrderStatus.COMPLETED,
                                   WorkOrder.completed_at >= since,
                                   WorkOrder.vendor_id.is_not(None),
                                   WorkOrder.id.not_in(charged),
                                   WorkOrder.id.not_in(list(skip)))
        .order_by(WorkOrder.completed_at).limit(limit))).all()]
