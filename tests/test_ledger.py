"""The double-entry ledger, on SQLite and PostgreSQL: property tests over random sequences
of postings, repeated keys and reversals (every transaction sums to zero, balances equal
their postings, no key is posted twice, a reversal restores the balances), money refused as
a float, and the same charge posted by two processes at once on PostgreSQL stored once."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade, with_schema
from dispatch.ledger import (
    AccountKey,
    LedgerError,
    balance,
    drifted_accounts,
    post,
    reverse,
    to_fen,
    unbalanced_transactions,
    yuan,
)
from dispatch.models import (
    AccountKind,
    LedgerAccount,
    LedgerMonthClose,
    LedgerPosting,
    LedgerTransaction,
)
from dispatch.settlement import close_month
from tests.storage import PG_ENV, _pg_admin, sqlite_url

AT = datetime(2026, 11, 15, 3, 0, tzinfo=UTC)
MONTH = "2026-11"
FUND = AccountKey(AccountKind.SUBSIDY_FUND)
ACCOUNTS = [FUND, AccountKey(AccountKind.ELDER_SUBSIDY, 1), AccountKey(AccountKind.ELDER_OWN, 1),
            AccountKey(AccountKind.ELDER_SUBSIDY, 2), AccountKey(AccountKind.VENDOR_PAYABLE, 7)]


def test_money_is_whole_fen_never_a_float() -> None:
    assert to_fen(Decimal("12.34")) == 1234 and to_fen("0.01") == 1 and to_fen(3) == 300
    assert yuan(1234) == Decimal("12.34")
    with pytest.raises(LedgerError, match="float"):
        to_fen(12.34)  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="whole number of fen"):
        to_fen(Decimal("0.001"))


async def test_an_unbalanced_or_fractional_transaction_writes_nothing(
        db_session: AsyncSession) -> None:
    with pytest.raises(LedgerError, match="sum to 5"):
        await post(db_session, "bad:1", "charge", AT, {FUND: -100, ACCOUNTS[1]: 105},
                   month=MONTH)
    with pytest.raises(LedgerError, match="whole fen"):
        await post(db_session, "bad:2", "charge", AT,
                   {FUND: -1, ACCOUNTS[1]: 1.0},  # type: ignore[dict-item]
                   month=MONTH)
    with pytest.raises(LedgerError, match="no transaction"):
        await reverse(db_session, "never:posted", AT, month=MONTH)
    assert await db_session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0
    assert await balance(db_session, FUND) == 0


# A step: post a key (amounts moved from one account to another), or reverse one.
steps = st.lists(st.one_of(
    st.tuples(st.just("post"), st.integers(0, 12), st.integers(0, 4), st.integers(0, 4),
              st.integers(1, 10**9)),
    st.tuples(st.just("reverse"), st.integers(0, 12))), min_size=1, max_size=30)


async def replay(session: AsyncSession, plan: list[tuple[Any, ...]]) -> Counter[AccountKey]:
    """Run the steps; the balances they should give."""
    expected: Counter[AccountKey] = Counter()
    posted: dict[str, dict[AccountKey, int]] = {}
    for step in plan:
        if step[0] == "post":
            _op, n, source, target, amount = step
            key = f"charge:{n}"
            legs = {ACCOUNTS[source]: -amount, ACCOUNTS[target]: amount} \
                if source != target else {}
            result = await post(session, key, "charge", AT, legs, month=MONTH, memo=key)
            if key not in posted:
                assert result.new
                posted[key] = legs
                expected.update(legs)
            else:
                assert not result.new  # the same key twice: stored once
        else:
            key = f"charge:{step[1]}"
            if key not in posted:
                with pytest.raises(LedgerError):
                    await reverse(session, key, AT, month=MONTH)
                continue
            result = await reverse(session, key, AT, month=MONTH)
            if f"reverse:{key}" not in posted:
                posted[f"reverse:{key}"] = {}
                expected.subtract(posted[key])
    return expected


async def check_invariants(session: AsyncSession, expected: Counter[AccountKey]) -> None:
    assert await unbalanced_transactions(session) == []
    assert await drifted_accounts(session) == []
    for key in ACCOUNTS:
        assert await balance(session, key) == expected[key], key
    keys = (await session.scalars(select(LedgerTransaction.business_key))).all()
    assert len(keys) == len(set(keys))
    assert await session.scalar(select(func.coalesce(func.sum(LedgerPosting.amount_fen), 0))) == 0


def in_session(url: str, work: Callable[[AsyncSession], Awaitable[None]]) -> None:
    """Run ``work`` in a session of a database engine of its own, on a loop of its own."""
    async def run() -> None:
        engine = make_async_engine(url, pool_size=2)
        try:
            async with async_sessionmaker_for(engine)() as session:
                await work(session)
        finally:
            await engine.dispose()

    asyncio.run(run())


def fresh_database(kind: str, folder: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        return sqlite_url(folder), None
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: PostgreSQL variant not run")
    schema = f"ledger_{os.urandom(6).hex()}"
    _pg_admin(base, f'CREATE SCHEMA "{schema}"')
    return with_schema(base, schema), schema


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated once for the property test; each example empties its ledger."""
    url, schema = fresh_database(request.param, tmp_path_factory.mktemp("ledger"))
    try:
        upgrade(url)
        yield url
    finally:
        if schema is not None:
            _pg_admin(os.environ[PG_ENV], f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def empty_ledger(session: AsyncSession) -> None:
    for table in (LedgerPosting, LedgerTransaction, LedgerAccount, LedgerMonthClose):
        await session.execute(delete(table))
    await session.commit()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_random_postings_and_reversals_keep_the_ledger_whole(
        ledger_url: str, plan: list[tuple[Any, ...]]) -> None:
    async def run(session: AsyncSession) -> None:
        await empty_ledger(session)
        await check_invariants(session, await replay(session, plan))

    in_session(ledger_url, run)


def _charge_in_a_process(url: str, start: Any, results: Any) -> None:
    """Post the same charge as another process does at the same moment; puts True if this
    process's post was the new one."""
    async def run() -> bool:
        engine = make_async_engine(url, pool_size=1)
        try:
            async with async_sessionmaker_for(engine)() as session:
                start.wait(30)
                result = await post(session, "charge:order:42", "charge", AT,
                                    {FUND: -3000, ACCOUNTS[1]: 3000}, month=MONTH)
                return result.new
        finally:
            await engine.dispose()

    results.put(asyncio.run(run()))


def test_the_same_charge_from_two_processes_at_once_is_posted_once(tmp_path: Path) -> None:
    url, schema = fresh_database("postgresql", tmp_path)
    try:
        upgrade(url)
        context = multiprocessing.get_context("spawn")
        start, results = context.Barrier(2), context.Queue()
        workers = [context.Process(target=_charge_in_a_process, args=(url, start, results))
                   for _ in range(2)]
        for worker in workers:
            worker.start()
        outcomes = sorted(results.get(timeout=120) for _ in workers)
        for worker in workers:
            worker.join(30)
        assert outcomes == [False, True]

        async def stored(session: AsyncSession) -> None:
            await check_invariants(session, Counter({FUND: -3000, ACCOUNTS[1]: 3000}))

        in_session(url, stored)
    finally:
        if schema is not None:
            _pg_admin(os.environ[PG_ENV], f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# A step of a county's months: charge an order (amount from the elder's vouchers and own
# funds to the vendor), charge it again (a second engine seeing the same completion), correct
# it (its reversal, into the month open now), close the month open now, or try to post into a
# month already closed.
COUNTY = "620102"
month_steps = st.lists(st.one_of(
    st.tuples(st.just("charge"), st.integers(0, 9), st.integers(1, 10**7)),
    st.tuples(st.just("again"), st.integers(0, 9)),
    st.tuples(st.just("correct"), st.integers(0, 9)),
    st.tuples(st.just("close")),
    st.tuples(st.just("late"), st.integers(0, 9))), min_size=1, max_size=25)
MONTHS = [f"2026-{n:02d}" for n in range(1, 13)]
TZ = ZoneInfo("Asia/Shanghai")


def charge_legs(n: int, amount: int) -> dict[AccountKey, int]:
    vouchers = amount // 3
    return {AccountKey(AccountKind.ELDER_SUBSIDY, n): -vouchers,
            AccountKey(AccountKind.ELDER_OWN, n): vouchers - amount,
            AccountKey(AccountKind.VENDOR_PAYABLE, 100 + n % 3): amount}


async def month_rows(session: AsyncSession, month: str) -> list[tuple[Any, ...]]:
    """A month's transactions and postings, as a comparable snapshot."""
    return [tuple(row) for row in (await session.execute(
        select(LedgerTransaction.id, LedgerTransaction.business_key, LedgerPosting.account_id,
               LedgerPosting.amount_fen)
        .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
        .where(LedgerTransaction.month == month)
        .order_by(LedgerTransaction.id, LedgerPosting.id))).all()]


async def replay_months(session: AsyncSession, plan: list[tuple[Any, ...]]
                        ) -> dict[str, list[tuple[Any, ...]]]:
    """Run the steps over consecutive months; the snapshot of each month when it closed."""
    open_month, frozen = 0, {}
    charged: set[str] = set()
    corrected: set[str] = set()  # their reversal is posted: asked again, it is that one
    for step in plan:
        month = MONTHS[open_month]
        at = datetime(2026, open_month + 1, 15, 3, 0, tzinfo=UTC)
        key = f"charge:order:{step[1]}" if len(step) > 1 else ""
        if step[0] in ("charge", "again") and (step[0] == "charge" or key in charged):
            amount = step[2] if step[0] == "charge" else 500
            result = await post(session, key, "charge", at, charge_legs(step[1], amount),
                                month=month, county=COUNTY)
            assert result.new == (key not in charged)  # charged once, whoever asks again
            charged.add(key)
        elif step[0] == "correct" and key in charged:
            await reverse(session, key, at, month=month, county=COUNTY)
            corrected.add(key)
        elif step[0] == "close" and open_month + 1 < len(MONTHS):
            close_at = datetime(2026, open_month + 2, 1, 1, 0, tzinfo=UTC)
            await close_month(session, COUNTY, month, "test", close_at, TZ, 0)
            frozen[month] = await month_rows(session, month)
            open_month += 1
        elif step[0] == "late" and frozen:
            closed = next(iter(frozen))
            with pytest.raises(LedgerError, match="is closed"):
                await post(session, f"late:{step[1]}:{len(charged)}", "charge", at,
                           charge_legs(step[1], 100), month=closed, county=COUNTY)
            if key in charged and key not in corrected:
                with pytest.raises(LedgerError, match="is closed"):
                    await reverse(session, key, at, month=closed, county=COUNTY)
            elif key in corrected:  # the reversal already posted, returned as it is
                again = await reverse(session, key, at, month=closed, county=COUNTY)
                assert not again.new
            with pytest.raises(LedgerError, match="already closed"):
                await close_month(session, COUNTY, closed, "test", at, TZ, 0)
    return frozen


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=month_steps)
# a correction made, then asked again into the month closed before it: the posted reversal
@example(plan=[("close",), ("charge", 2, 1), ("correct", 2), ("late", 2)])
def test_charges_corrections_and_month_closes_keep_closed_months_unchanged(
        ledger_url: str, plan: list[tuple[Any, ...]]) -> None:
    async def run(session: AsyncSession) -> None:
        await empty_ledger(session)
        frozen = await replay_months(session, plan)
        assert await unbalanced_transactions(session) == []
        assert await drifted_accounts(session) == []
        keys = (await session.scalars(select(LedgerTransaction.business_key))).all()
        assert len(keys) == len(set(keys))  # each order's charge (and its reversal) once
        for month, rows in frozen.items():
            assert await month_rows(session, month) == rows, month

    in_session(ledger_url, run)
