"""Balances read out on the phone: the elder's service card (key 4 at the 12349 menu) and a
vendor's month so far (``*#`` on the service line).

The amounts are read from the ledger while the caller waits and said as Mandarin speaks
money (ivr/amounts.py) from recorded words. A ledger that cannot be read is said so
(``balance_unavailable``); the call goes on.
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from dispatch.balances import CardBalances, VendorMonth, card_balances, vendor_month
from dispatch.ledger import month_of, to_fen
from ivr.agi.session import AgiSession
from ivr.amounts import money_words, number_words
from ivr.context import EngineContext
from ivr.storage_steps import storage_step

log = logging.getLogger(__name__)


def card_words(card: CardBalances | None) -> list[str]:
    """The prompt names that read an elder's card: vouchers, then own funds (or the debt)."""
    if card is None:
        return ["balance_no_card"]
    own = (["balance_own", *money_words(card.own_fen)] if card.own_fen >= 0
           else ["balance_owed", *money_words(-card.own_fen)])
    return ["balance_vouchers", *money_words(max(card.vouchers_fen, 0)), *own]


def vendor_month_words(month: VendorMonth) -> list[str]:
    """The prompt names that read a vendor's month: its orders, then the amount to settle."""
    owed = month.payable_fen
    amount = (["vendor_month_amount", *money_words(owed)] if owed >= 0
              else ["vendor_month_deducted", *money_words(-owed)])
    return ["vendor_month_orders", *number_words(max(month.orders, 0), counted=True),
            "vendor_month_orders_unit", *amount]


async def _play(agi: AgiSession, ctx: EngineContext, names: list[str], language: str) -> None:
    for name in names:
        await agi.stream_file(ctx.prompts.path(name, language))


async def read_card(agi: AgiSession, ctx: EngineContext, elder_id: int, language: str
                    ) -> None:
    """Say the elder's card balances (or that they cannot be read now)."""
    read = await storage_step(ctx.sessions.urgent, lambda session: card_balances(session, elder_id),
                              log, "card balances of elder %s unreadable", elder_id)
    await _play(agi, ctx, card_words(read.value) if read.ok else ["balance_unavailable"],
                language)


async def read_vendor_month(agi: AgiSession, ctx: EngineContext, vendor_id: int,
                            language: str) -> None:
    """Say the vendor's orders and amount to settle this month (local time) so far."""
    money = ctx.settings.money
    month = month_of(ctx.now(), ZoneInfo(ctx.settings.dispatch.timezone))
    read = await storage_step(
        ctx.sessions.urgent, lambda session: vendor_month(
            session, vendor_id, month, to_fen(money.upheld_complaint_deduction_yuan)),
        log, "month of vendor %s unreadable", vendor_id)
    if read.value is None:
        await _play(agi, ctx, ["balance_unavailable"], language)
        return
    await _play(agi, ctx, vendor_month_words(read.value), language)
