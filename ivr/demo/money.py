"""The demo's money: every completed order is charged to the elder's service card, and the
month's settlement must agree with the ledger to the fen, or the demo fails.

The demo's vendors all charge the same prices, valid from long before the demo's day, and
every subsidy category has terms (a category without vouchers pays from own funds). Once the
orders' stories have ended, the demo waits for the last charges, then prints each county's
month and what the ledger says of it (dispatch/reconcile.py).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from dispatch.charging import add_tariff, uncharged_orders
from dispatch.demo_state import vendor_ids
from dispatch.ledger import to_fen, yuan
from dispatch.models import ServiceType
from dispatch.reconcile import Reconciliation, reconcile
from ivr.context import EngineContext

PRICES_FEN = {ServiceType.MEAL: 1_500, ServiceType.HOUSEKEEPING: 5_000,
              ServiceType.HEALTH: 3_000}
PRICES_FROM = date(2000, 1, 1)
DEDUCTION_YUAN = Decimal(5)
# [money] as the demo runs it: vouchers (yuan a month) and their share of each price
DEMO_MONEY = {
    "charge": True,
    "upheld_complaint_deduction_yuan": str(DEDUCTION_YUAN),
    "categories": {
        "none": {"voucher_yuan": "0", "share": "0"},
        "sanwu": {"voucher_yuan": "300", "share": "1"},
        "dibao": {"voucher_yuan": "200", "share": "0.8"},
        "low_income": {"voucher_yuan": "100", "share": "0.5", "carry_over": True},
        "priority_care": {"voucher_yuan": "200", "share": "0.8"},
        "disabled_hardship": {"voucher_yuan": "300", "share": "0.9"},
        "model_worker": {"voucher_yuan": "100", "share": "0.5"},
    },
}
CHARGES_WAIT_S = 120.0  # real seconds for the last charges once every story has ended
LOOKBACK = timedelta(days=31)


@dataclass
class MoneyOutcome:
    reconciliation: Reconciliation
    waited_out: bool  # charges were still missing when the wait ended

    @property
    def failed(self) -> bool:
        return self.waited_out or bool(self.reconciliation.problems)


async def add_demo_tariffs(ctx: EngineContext) -> int:
    """Every vendor's price list; how many prices were set."""
    async with ctx.sessions() as session:
        vendors = await vendor_ids(session)
        for vendor_id in vendors:
            for service, price in PRICES_FEN.items():
                await add_tariff(session, vendor_id, service, price, PRICES_FROM, None)
    return len(vendors) * len(PRICES_FEN)


async def charges_pending(ctx: EngineContext) -> int:
    async with ctx.sessions() as session:
        return len(await uncharged_orders(session, ctx.now() - LOOKBACK))


async def money_outcome(ctx: EngineContext) -> MoneyOutcome:
    """Wait (a bounded time) for the last completed orders' charges, then reconcile."""
    deadline = time.monotonic() + CHARGES_WAIT_S
    while await charges_pending(ctx) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    waited_out = await charges_pending(ctx) > 0
    async with ctx.sessions() as session:
        checked = await reconcile(session, to_fen(DEDUCTION_YUAN))
    return MoneyOutcome(checked, waited_out)


def print_money(outcome: MoneyOutcome) -> None:
    checked = outcome.reconciliation
    print(f"\nSettlement: {checked.charged_orders} of {checked.completed_orders} completed "
          "orders charged")
    print(f"  {'county':<8} {'month':<8} {'vendors':>7} {'orders':>6} {'amount':>10} "
          f"{'vouchers':>10} {'own funds':>10} {'payable':>10}")
    for month in checked.settlements:
        vendors = month.vendors
        print(f"  {month.county:<8} {month.month:<8} {len(vendors):>7} "
              f"{sum(v.orders for v in vendors):>6} {yuan(month.total_fen):>10} "
              f"{yuan(sum(v.vouchers_fen for v in vendors)):>10} "
              f"{yuan(sum(v.own_fen for v in vendors)):>10} "
              f"{yuan(sum(v.payable_fen for v in vendors)):>10}")
    print(f"  statements {yuan(checked.statements_fen)} yuan; the ledger owes the vendors "
          f"{yuan(checked.ledger_payable_fen)} yuan")
    for problem in checked.problems:
        print(f"  MISMATCH: {problem}")
    if outcome.waited_out:
        print("  charges still missing after the wait")
    print("RESULT: " + ("the settlement does not reconcile with the ledger" if outcome.failed
                        else "the settlement reconciles with the ledger to the fen"))
