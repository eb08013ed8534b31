"""What is read out by phone, from the ledger, on SQLite and PostgreSQL: an elder's card
(vouchers and own funds, a debt when the own funds ran out, no card at all) and a vendor's
month so far (charges less reversals, upheld complaints deducted, other months and vendors
not counted), agreeing with the month's settlement."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.balances import CardBalances, VendorMonth, card_balances, vendor_month
from dispatch.charging import SubsidyRule, charge_order
from dispatch.ledger import AccountKey, post, reverse
from dispatch.models import AccountKind, Complaint, ServiceType
from dispatch.settlement import settlement
from dispatch.vouchers import credit_month
from ivr.flows.balances import card_words, vendor_month_words
from tests.orders import completed_order
from tests.test_settlement import COUNTY, NOV, world

TZ = ZoneInfo("Asia/Shanghai")
RULES = {"sanwu": SubsidyRule(voucher_fen=5000, carry_over=False, share=Decimal("0.8")),
         "dibao": SubsidyRule(voucher_fen=2000, carry_over=True, share=Decimal("0.5"))}
OCT = datetime(2026, 10, 20, 2, 0, tzinfo=UTC)
DEDUCTION_FEN = 500


async def test_an_elders_card_and_its_debt(db_session: AsyncSession) -> None:
    ids = await world(db_session)
    assert await card_balances(db_session, ids["sanwu"]) is None  # no card yet
    await credit_month(db_session, "2026-11", RULES, NOV)
    assert await card_balances(db_session, ids["sanwu"]) == CardBalances(5000, 0)
    # three meals of 30 yuan: the vouchers pay 24 yuan of each while they last
    for _ in range(3):
        await charge_order(db_session, await completed_order(
            db_session, ids["sanwu"], ids["meals"], NOV), RULES, TZ, NOV)
    card = await card_balances(db_session, ids["sanwu"])
    assert card == CardBalances(vouchers_fen=0, own_fen=-(600 + 600 + 2800))
    assert card_words(card) == ["balance_vouchers", "digit_0", "yuan",
                                "balance_owed", "digit_4", "ten", "yuan"]
    await post(db_session, "deposit:test", "deposit", NOV,
               {AccountKey(AccountKind.ELDER_OWN, ids["sanwu"]): 5000,
                AccountKey(AccountKind.ELDER_DEPOSITS): -5000}, month="2026-11")
    card = await card_balances(db_session, ids["sanwu"])
    assert card == CardBalances(0, 1000)
    assert card_words(card)[3:] == ["balance_own", "ten", "yuan"]
    assert card_words(None) == ["balance_no_card"]


async def test_a_vendors_month_so_far_agrees_with_its_statement(
        db_session: AsyncSession) -> None:
    ids = await world(db_session)
    await credit_month(db_session, "2026-11", RULES, NOV)
    meals = [await completed_order(db_session, ids[elder], ids["meals"], at)
             for elder, at in (("sanwu", NOV), ("dibao", NOV), ("elsewhere", NOV),
                               ("dibao", NOV), ("sanwu", OCT))]
    for order in meals:
        await charge_order(db_session, order, RULES, TZ, NOV)
    await charge_order(db_session, await completed_order(
        db_session, ids["sanwu"], ids["cleaning"], NOV, ServiceType.HOUSEKEEPING),
        RULES, TZ, NOV)  # another vendor
    await reverse(db_session, f"charge:order:{meals[3]}", NOV, month="2026-11")
    db_session.add(Complaint(order_id=meals[0], vendor_id=ids["meals"], rating=1,
                             opened_at=NOV, upheld=True))
    await db_session.commit()
    month = await vendor_month(db_session, ids["meals"], "2026-11", DEDUCTION_FEN)
    # four charged in November, one of them reversed, in two counties; the order completed
    # in October belongs to October's month
    assert month == VendorMonth("2026-11", orders=3, amount_fen=9000, deduction_fen=500)
    assert month.payable_fen == 8500
    statements = [v for county in (COUNTY, "620103")
                  for v in (await settlement(db_session, county, "2026-11",
                                             DEDUCTION_FEN)).vendors
                  if v.vendor_id == ids["meals"]]
    assert sum(v.orders for v in statements) == month.orders
    assert sum(v.payable_fen for v in statements) == month.payable_fen
    # 三单，应结算金额八十五元
    assert vendor_month_words(month) == [
        "vendor_month_orders", "digit_3", "vendor_month_orders_unit",
        "vendor_month_amount", "digit_8", "ten", "digit_5", "yuan"]
    assert await vendor_month(db_session, ids["meals"], "2026-12", DEDUCTION_FEN) == \
        VendorMonth("2026-12", 0, 0, 0)


def test_deductions_above_the_amount_are_said_as_such() -> None:
    assert vendor_month_words(VendorMonth("2026-11", 1, 300, 500)) == [
        "vendor_month_orders", "digit_1", "vendor_month_orders_unit",
        "vendor_month_deducted", "liang", "yuan"]
