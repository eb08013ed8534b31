"""The demo's money check, on SQLite and PostgreSQL: a ledger in order reconciles with its
settlements; an order left uncharged, or a balance changed behind the ledger's back, is
named."""

from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.charging import SubsidyRule, charge_order
from dispatch.ledger import reverse
from dispatch.models import LedgerAccount
from dispatch.reconcile import reconcile
from dispatch.vouchers import credit_month
from tests.orders import completed_order
from tests.test_settlement import NOV, world

TZ = ZoneInfo("Asia/Shanghai")
RULES = {"sanwu": SubsidyRule(voucher_fen=5000, carry_over=False, share=Decimal("0.8")),
         "dibao": SubsidyRule(voucher_fen=2000, carry_over=True, share=Decimal("0.5"))}


async def test_a_ledger_in_order_reconciles_and_faults_are_named(
        db_session: AsyncSession) -> None:
    ids = await world(db_session)
    await credit_month(db_session, "2026-11", RULES, NOV)
    orders = [await completed_order(db_session, ids[elder], ids["meals"], NOV)
              for elder in ("sanwu", "dibao", "elsewhere")]
    for order in orders:
        await charge_order(db_session, order, RULES, TZ, NOV)
    await reverse(db_session, f"charge:order:{orders[2]}", NOV, month="2026-11")
    checked = await reconcile(db_session, 500)
    assert checked.problems == []
    assert (checked.completed_orders, checked.charged_orders) == (3, 3)
    assert [(s.county, s.month) for s in checked.settlements] == [
        ("620102", "2026-11"), ("620103", "2026-11")]
    assert checked.statements_fen == checked.ledger_payable_fen == 6000
    # an order completed and never charged; a balance written outside the ledger
    await completed_order(db_session, ids["sanwu"], ids["meals"], NOV)
    await db_session.execute(update(LedgerAccount).where(LedgerAccount.owner_id == ids["dibao"])
                             .values(balance_fen=LedgerAccount.balance_fen + 1))
    await db_session.commit()
    problems = (await reconcile(db_session, 500)).problems
    assert "1 of 4 completed orders not charged" in problems
    assert any("balances differ from their postings" in p for p in problems)
