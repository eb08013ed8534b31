"""Vouchers, month close and settlement, on SQLite and PostgreSQL: each elder credited once a
month (unused vouchers lapse unless they carry over); a month still in progress cannot be
closed; a closed month's statements (orders, amounts, voucher and own-funds parts, upheld
complaints deducted) and subsidy report; nothing is posted into it afterwards (a late charge
goes to the open month); the files come out as CSV and XLSX, also from the command line."""

from __future__ import annotations

import csv
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.charging import SubsidyRule, add_tariff, charge_order
from dispatch.ledger import AccountKey, LedgerError, balance, post, reverse
from dispatch.models import (
    AccountKind,
    Complaint,
    Elder,
    LedgerTransaction,
    ServiceType,
    SubsidyCategory,
    Vendor,
)
from dispatch.settlement import close_month, settlement
from dispatch.settlement_export import write_settlement
from dispatch.vouchers import credit_month
from tests.orders import completed_order

TZ = ZoneInfo("Asia/Shanghai")
COUNTY = "620102"
RULES = {"sanwu": SubsidyRule(voucher_fen=5000, carry_over=False, share=Decimal("0.8")),
         "dibao": SubsidyRule(voucher_fen=2000, carry_over=True, share=Decimal("0.5"))}
NOV = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
DEC = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
FUND = AccountKey(AccountKind.SUBSIDY_FUND)


async def world(session: AsyncSession) -> dict[str, int]:
    rows = {"sanwu": Elder(name="王秀兰", county_code=COUNTY,
                           subsidy_category=SubsidyCategory.SANWU),
            "dibao": Elder(name="李建国", county_code=COUNTY,
                           subsidy_category=SubsidyCategory.DIBAO),
            "elsewhere": Elder(name="张桂英", county_code="620103",
                               subsidy_category=SubsidyCategory.SANWU),
            "meals": Vendor(name="城关助餐"), "cleaning": Vendor(name="七里河家政")}
    session.add_all(rows.values())
    await session.commit()
    ids = {name: row.id for name, row in rows.items()}
    await add_tariff(session, ids["meals"], ServiceType.MEAL, 3000, date(2026, 1, 1), None)
    await add_tariff(session, ids["cleaning"], ServiceType.HOUSEKEEPING, 6000,
                     date(2026, 1, 1), None)
    return ids


async def test_vouchers_are_credited_once_a_month_and_lapse_unless_they_carry_over(
        db_session: AsyncSession) -> None:
    ids = await world(db_session)
    assert await credit_month(db_session, "2026-11", RULES, NOV) == 3
    assert await credit_month(db_session, "2026-11", RULES, NOV) == 0  # once
    sanwu = AccountKey(AccountKind.ELDER_SUBSIDY, ids["sanwu"])
    dibao = AccountKey(AccountKind.ELDER_SUBSIDY, ids["dibao"])
    assert (await balance(db_session, sanwu), await balance(db_session, dibao)) == (5000, 2000)
    meal = await completed_order(db_session, ids["sanwu"], ids["meals"], NOV)
    await charge_order(db_session, meal, RULES, TZ, NOV)
    assert await credit_month(db_session, "2026-12", RULES, DEC) == 3
    # sanwu: 2,600 fen unused lapsed, 5,000 new; dibao: 2,000 carried over, 2,000 new
    assert (await balance(db_session, sanwu), await balance(db_session, dibao)) == (5000, 4000)
    # out: 12,000 in November and again in December; back: the 2,600 and 5,000 that lapsed
    assert await balance(db_session, FUND) == -12_000 + 2_600 + 5_000 - 12_000


async def test_a_closed_month_gives_its_statements_and_never_changes(
        db_session: AsyncSession, tmp_path: Path) -> None:
    ids = await world(db_session)
    await credit_month(db_session, "2026-11", RULES, NOV)
    first = await completed_order(db_session, ids["sanwu"], ids["meals"], NOV)
    second = await completed_order(db_session, ids["dibao"], ids["cleaning"], NOV,
                                   ServiceType.HOUSEKEEPING)
    wrong = await completed_order(db_session, ids["dibao"], ids["meals"], NOV)
    late = await completed_order(db_session, ids["sanwu"], ids["meals"], NOV)
    other = await completed_order(db_session, ids["elsewhere"], ids["meals"], NOV)
    for order in (first, second, wrong, other):
        await charge_order(db_session, order, RULES, TZ, NOV)
    await reverse(db_session, f"charge:order:{wrong}", NOV, month="2026-11")  # a mistake
    db_session.add(Complaint(order_id=first, vendor_id=ids["meals"], rating=1, opened_at=NOV,
                             upheld=True))
    await db_session.commit()
    with pytest.raises(LedgerError, match="still in progress"):
        await close_month(db_session, COUNTY, "2026-12", "li", DEC, TZ, 500)
    with pytest.raises(LedgerError, match="not a month"):
        await close_month(db_session, COUNTY, "2026-13", "li", DEC, TZ, 500)
    closed = await close_month(db_session, COUNTY, "2026-11", "li", DEC, TZ, 500)
    with pytest.raises(LedgerError, match="already closed"):
        await close_month(db_session, COUNTY, "2026-11", "li", DEC, TZ, 500)
    meals, cleaning = closed.vendors
    assert (meals.vendor, meals.orders, meals.amount_fen, meals.vouchers_fen, meals.own_fen,
            meals.upheld_complaints, meals.deduction_fen, meals.payable_fen) == (
        "城关助餐", 1, 3000, 2400, 600, 1, 500, 2500)  # the wrong order reversed
    assert (cleaning.orders, cleaning.amount_fen, cleaning.vouchers_fen, cleaning.own_fen) == (
        1, 6000, 2000, 4000)  # half the price from vouchers, within the 2,000 left
    lines = {line.category: (line.elders, line.orders, line.vouchers_fen, line.own_fen)
             for line in closed.categories}
    assert lines == {"sanwu": (1, 1, 2400, 600), "dibao": (1, 1, 2000, 4000)}
    # nothing more goes into November: a post is refused, a late charge goes to December
    with pytest.raises(LedgerError, match="closed"):
        await post(db_session, "manual:1", "adjust", DEC, {FUND: -1, AccountKey(
            AccountKind.ELDER_OWN, ids["sanwu"]): 1}, month="2026-11", county=COUNTY)
    await charge_order(db_session, late, RULES, TZ, DEC)
    month = await db_session.scalar(select(LedgerTransaction.month).where(
        LedgerTransaction.business_key == f"charge:order:{late}"))
    assert month == "2026-12"
    again = await settlement(db_session, COUNTY, "2026-11", 500)
    assert again.vendors == closed.vendors and again.categories == closed.categories
    paths = write_settlement(again, tmp_path / "out")
    with paths[0].open(encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:4] == ["vendor_id", "vendor", "orders", "amount_yuan"]
    assert rows[1][1:] == ["城关助餐", "1", "30.00", "24.00", "6.00", "1", "5.00", "25.00"]
    with zipfile.ZipFile(paths[2]) as book:
        names = set(book.namelist())
        text = "".join(book.read(name).decode("utf-8") for name in names
                       if name.startswith("xl/") and name.endswith(".xml"))
    assert {"xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"} <= names
    assert "城关助餐" in text and "25.00" in text and "dibao" in text


def test_the_command_line_closes_a_month_and_reports_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ivr.cli import main

    url = f"sqlite:///{tmp_path / 'money.sqlite3'}"
    monkeypatch.setenv("HOTLINE_DATABASE__URL", url)
    monkeypatch.setenv("HOTLINE_AMI__ENABLED", "false")
    out = tmp_path / "files"
    assert main(["settle", "close", "--month", "2999-01", "--county", COUNTY,
                 "--out", str(out)]) == 2
    assert main(["settle", "close", "--month", "2020-01", "--county", COUNTY,
                 "--out", str(out)]) == 0
    assert main(["settle", "close", "--month", "2020-01", "--county", COUNTY,
                 "--out", str(out)]) == 2
    assert main(["report", "settlement", "--month", "2020-01", "--county", COUNTY,
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "still in progress" in printed.err and "already closed" in printed.err
    assert f"settlement of county {COUNTY}, 2020-01 (closed" in printed.out
    assert sorted(p.name for p in out.iterdir()) == [
        f"settlement-{COUNTY}-2020-01-subsidy.csv", f"settlement-{COUNTY}-2020-01-vendors.csv",
        f"settlement-{COUNTY}-2020-01.xlsx"]
