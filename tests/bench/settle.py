"""Month close of one county: ``close_month`` and the statement files (CSV and XLSX) for
10,000 and for 100,000 charged orders, against a plain aggregate SQL query over the same
ledger rows in the same run (the vendors' totals, one GROUP BY), on SQLite.

Each size is a fresh database filled in bulk: elders of one county and of another, vendors,
completed orders, and each order's charge (vouchers, own funds, the vendor's payable), as the
engine posts it; one order in fifty corrected by its reversal. Time: close and files, once.
Memory: the peak of Python allocations (tracemalloc) in a second close of the same month
(its close row removed), so the timed run carries no tracing. The goal is under 10x the
baseline's time and a peak that stays flat from 10,000 orders to 100,000.

Checks: the statements reconcile to the ledger to the fen (the vendors' amounts sum to the
county's charges less reversals, the orders to the orders charged less corrected), the other
county's orders are left out, and the three files are written.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select

from dispatch.db import async_sessionmaker_for, make_async_engine, make_sync_engine, upgrade
from dispatch.ledger import month_of
from dispatch.models import (
    AccountKind,
    Elder,
    LedgerAccount,
    LedgerMonthClose,
    LedgerPosting,
    LedgerTransaction,
    OrderSource,
    OrderStatus,
    ServiceType,
    SubsidyCategory,
    Vendor,
    WorkOrder,
)
from dispatch.settlement import Settlement, close_month
from dispatch.settlement_export import write_settlement
from tests.bench.checks import Bench, standalone

SIZES = (10_000, 100_000)
COUNTY, OTHER = "620102", "620103"
ELDERS, VENDORS = 2_000, 40
CORRECTED_EVERY = 50
CHUNK = 10_000
TZ = ZoneInfo("Asia/Shanghai")
CATEGORIES = (SubsidyCategory.SANWU, SubsidyCategory.DIBAO, SubsidyCategory.NONE)


def _month() -> tuple[str, datetime, datetime]:
    """Last month (the run's own date: no date is fixed), a moment in it, and now."""
    now = datetime.now(UTC)
    inside = now.replace(day=1) - timedelta(days=10)
    return month_of(inside, TZ), inside, now


def _fill(db_url: str, orders: int, inside: datetime, month: str) -> dict[str, int]:
    """The registry, orders and charges in bulk; the county's expected totals."""
    engine = make_sync_engine(db_url)
    expected = {"orders": 0, "amount_fen": 0}
    try:
        with engine.begin() as conn:
            elder_ids = conn.execute(insert(Elder).returning(Elder.id), [
                {"name": f"长者{n}", "county_code": COUNTY if n % 10 else OTHER,
                 "subsidy_category": CATEGORIES[n % 3], "created_at": inside}
                for n in range(ELDERS)]).scalars().all()
            county_of = {e: (COUNTY if n % 10 else OTHER) for n, e in enumerate(elder_ids)}
            vendor_ids = conn.execute(insert(Vendor).returning(Vendor.id), [
                {"name": f"服务商{n}"} for n in range(VENDORS)]).scalars().all()
            accounts: dict[tuple[AccountKind, int], int] = {}
            for kind, owners in ((AccountKind.ELDER_SUBSIDY, elder_ids),
                                 (AccountKind.ELDER_OWN, elder_ids),
                                 (AccountKind.VENDOR_PAYABLE, vendor_ids)):
                ids = conn.execute(insert(LedgerAccount).returning(
                    LedgerAccount.id, LedgerAccount.owner_id), [
                    {"kind": kind, "owner_id": owner, "balance_fen": 0}
                    for owner in owners]).all()
                accounts.update({(kind, owner): account for account, owner in ids})
            for start in range(0, orders, CHUNK):
                batch = range(start, min(orders, start + CHUNK))
                rows = [(elder_ids[n % ELDERS], vendor_ids[n % VENDORS], 2000 + n % 37 * 100)
                        for n in batch]
                order_ids = conn.execute(insert(WorkOrder).returning(WorkOrder.id), [
                    {"elder_id": elder, "service": ServiceType.MEAL, "priority": 5,
                     "status": OrderStatus.COMPLETED, "source": OrderSource.PHONE,
                     "created_at": inside, "vendor_id": vendor, "completed_at": inside}
                    for elder, vendor, _price in rows]).scalars().all()
                txns = [{"business_key": f"charge:order:{order}", "kind": "charge",
                         "at": inside, "month": month, "order_id": order}
                        for order in order_ids]
                corrected = [(order, row) for order, row in zip(order_ids, rows, strict=True)
                             if order % CORRECTED_EVERY == 0]
                txns += [{"business_key": f"reverse:charge:order:{order}", "kind": "reversal",
                          "at": inside, "month": month, "order_id": order}
                         for order, _row in corrected]
                txn_ids = conn.execute(insert(LedgerTransaction).returning(
                    LedgerTransaction.id), txns).scalars().all()
                legs = []
                for txn_id, (elder, vendor, price), sign in zip(
                        txn_ids, rows + [row for _o, row in corrected],
                        [1] * len(rows) + [-1] * len(corrected), strict=True):
                    vouchers = price * 8 // 10
                    legs += [
                        {"transaction_id": txn_id, "amount_fen": -sign * vouchers,
                         "account_id": accounts[(AccountKind.ELDER_SUBSIDY, elder)]},
                        {"transaction_id": txn_id, "amount_fen": -sign * (price - vouchers),
                         "account_id": accounts[(AccountKind.ELDER_OWN, elder)]},
                        {"transaction_id": txn_id, "amount_fen": sign * price,
                         "account_id": accounts[(AccountKind.VENDOR_PAYABLE, vendor)]}]
                    if county_of[elder] == COUNTY:
                        expected["orders"] += sign
                        expected["amount_fen"] += sign * price
                conn.execute(insert(LedgerPosting), legs)
    finally:
        engine.dispose()
    return expected


async def _close(db_url: str, month: str, now: datetime, folder: Path
                 ) -> tuple[Settlement, list[Path]]:
    engine = make_async_engine(db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            report = await close_month(session, COUNTY, month, "bench", now, TZ, 0)
        return report, write_settlement(report, folder)
    finally:
        await engine.dispose()


async def _reopen(db_url: str, month: str) -> None:
    engine = make_async_engine(db_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(LedgerMonthClose).where(LedgerMonthClose.month == month))
    finally:
        await engine.dispose()


async def _baseline(db_url: str, month: str) -> float:
    """The vendors' totals of the month in one plain aggregate query."""
    engine = make_async_engine(db_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            started = time.perf_counter()
            (await conn.execute(
                select(LedgerAccount.owner_id, func.count(), func.sum(LedgerPosting.amount_fen))
                .select_from(LedgerPosting)
                .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
                .join(LedgerAccount, LedgerAccount.id == LedgerPosting.account_id)
                .join(WorkOrder, WorkOrder.id == LedgerTransaction.order_id)
                .join(Elder, Elder.id == WorkOrder.elder_id)
                .where(LedgerTransaction.month == month, Elder.county_code == COUNTY,
                       LedgerAccount.kind == AccountKind.VENDOR_PAYABLE)
                .group_by(LedgerAccount.owner_id))).all()
            return time.perf_counter() - started
    finally:
        await engine.dispose()


async def _size(bench: Bench, orders: int) -> dict[str, Any]:
    folder = bench.run_dir(f"settle-{orders}")
    db_url = f"sqlite:///{folder / 'hotline.sqlite3'}"
    upgrade(db_url)
    month, inside, now = _month()
    expected = _fill(db_url, orders, inside, month)
    baseline_s = await _baseline(db_url, month)
    started = time.perf_counter()
    report, files = await _close(db_url, month, now, folder / "out")
    close_s = time.perf_counter() - started
    await _reopen(db_url, month)
    tracemalloc.start()
    try:
        await _close(db_url, month, now, folder / "out-again")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    label = f"settle {orders:,}"
    bench.expect(f"{label}: orders in the statements (charged less corrected)",
                 expected["orders"], sum(v.orders for v in report.vendors))
    bench.expect(f"{label}: amount in the statements, fen", expected["amount_fen"],
                 report.total_fen)
    bench.expect(f"{label}: statement files written", 3, sum(1 for f in files if f.exists()))
    return {"orders charged": orders, "close + files s": close_s,
            "baseline: one aggregate query s": baseline_s,
            "close / baseline": close_s / baseline_s if baseline_s else float("nan"),
            "peak Python memory MiB": peak / 2**20}


async def _run(bench: Bench) -> None:
    figures = {orders: await _size(bench, orders) for orders in SIZES}
    small, large = (figures[size] for size in SIZES)
    for orders, values in figures.items():
        bench.report(f"month close, one county, {orders:,} orders, SQLite", values)
    bench.report(f"month close: growth from {SIZES[0]:,} to {SIZES[1]:,} orders", {
        "time x": large["close + files s"] / small["close + files s"],
        "peak memory x": large["peak Python memory MiB"] / small["peak Python memory MiB"],
        "goals": "close < 10x the aggregate query; memory flat in the number of orders"})


def run(bench: Bench) -> None:
    asyncio.run(_run(bench))


if __name__ == "__main__":
    standalone("settle", run)
