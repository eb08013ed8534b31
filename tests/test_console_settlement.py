"""The settlement pages in a real Chromium, on a real database: a supervisor sees the months
of the counties in their region, a month's statements and subsidy report, and downloads
them as CSV and XLSX; another region's county by URL is 404 and audited; an operator is
refused; a malformed month is not found. Each view and download is audited."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from dispatch.accounts import Role
from dispatch.db import async_sessionmaker_for, make_async_engine, make_sync_engine
from dispatch.ledger import AccountKey, post
from dispatch.models import AccountKind, WorkOrder
from tests.browser import account, in_own_loop, sign_in
from tests.console_site import audit, session_of
from tests.console_world import CHAOYANG, HEPING, World

PRICE_FEN = 3000
AT = datetime.now(UTC)
MONTH = f"{AT:%Y-%m}"


async def _charge(db_url: str, world: World) -> None:
    """The Chaoyang and Heping orders served by the world's vendor, and charged."""
    engine = make_async_engine(db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            for label, county in (("chaoyang", CHAOYANG[2]), ("heping", HEPING[2])):
                order = (await session.execute(
                    update(WorkOrder).where(WorkOrder.order_no == world.orders[label])
                    .values(vendor_id=world.vendor_id, completed_at=AT)
                    .returning(WorkOrder.id, WorkOrder.elder_id))).one()
                await session.commit()
                await post(session, f"charge:order:{order.id}", "charge", AT,
                           {AccountKey(AccountKind.ELDER_SUBSIDY, order.elder_id): -2400,
                            AccountKey(AccountKind.ELDER_OWN, order.elder_id): -600,
                            AccountKey(AccountKind.VENDOR_PAYABLE, world.vendor_id): PRICE_FEN},
                           month=MONTH, order_id=order.id, county=county)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def charged(console: tuple[str, str, World]) -> tuple[str, str, World]:
    _url, db_url, world = console
    in_own_loop(_charge(db_url, world))
    account(db_url, "chen", Role.SUPERVISOR, f"county:{CHAOYANG[2]}")
    return console


@pytest.fixture(scope="module")
def signed_in(chromium: Any, charged: tuple[str, str, World]) -> dict[str, Any]:
    """chen's session: a supervisor of Chaoyang."""
    return session_of(chromium, charged[0], "chen")


def test_a_supervisor_sees_the_regions_months_and_downloads_them(
        charged: tuple[str, str, World], page: Any) -> None:
    url, db_url, _world = charged
    page.goto(f"{url}/settlement")
    assert page.locator("main table tbody tr").all_inner_texts() == [f"{CHAOYANG[2]}\t{MONTH}"]
    page.click(f"text={MONTH}")
    vendor = page.locator("#vendors tbody tr").all_inner_texts()
    assert vendor == ["朝阳助餐中心\t1\t30.00\t24.00\t6.00\t0\t0.00\t30.00"]
    assert page.locator("#categories tbody tr").count() == 1
    got = page.request.get(f"{url}/settlement/{CHAOYANG[2]}/{MONTH}/vendors.csv")
    assert got.status == 200 and "attachment" in got.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(got.body().decode("utf-8-sig"))))
    assert table[1][1:] == ["朝阳助餐中心", "1", "30.00", "24.00", "6.00", "0", "0.00",
                            "30.00"]
    book = page.request.get(f"{url}/settlement/{CHAOYANG[2]}/{MONTH}/settlement.xlsx")
    assert book.status == 200
    assert "xl/worksheets/sheet1.xml" in zipfile.ZipFile(io.BytesIO(book.body())).namelist()
    viewed = [(row.account_name, row.target, row.detail["file"])
              for row in audit(db_url, "settlement_viewed")]
    target = f"{CHAOYANG[2]}/{MONTH}"
    assert {("chen", target, "page"), ("chen", target, "vendors.csv"),
            ("chen", target, "settlement.xlsx")} <= set(viewed)


def test_another_regions_county_is_not_found_and_audited(
        charged: tuple[str, str, World], page: Any) -> None:
    url, db_url, _world = charged
    response = page.goto(f"{url}/settlement/{HEPING[2]}/{MONTH}")
    assert response.status == 404
    assert "和平" not in page.content() and "30.00" not in page.content()
    assert page.request.get(f"{url}/settlement/{HEPING[2]}/{MONTH}/vendors.csv").status == 404
    refused = [row.target for row in audit(db_url, "settlement_refused")]
    assert refused.count(f"{HEPING[2]}/{MONTH}") == 2


@pytest.mark.parametrize("path", ["/settlement/110105/2026-13", "/settlement/11010x/2026-11",
                                  "/settlement/110105/2026-11/../../etc/passwd",
                                  "/settlement/110105/2026-11/other.csv"])
def test_malformed_addresses_are_not_found(charged: tuple[str, str, World], page: Any,
                                           path: str) -> None:
    assert page.request.get(f"{charged[0]}{path}").status == 404


def test_an_operator_is_refused(charged: tuple[str, str, World], chromium: Any) -> None:
    context = chromium.new_context()
    try:
        page = context.new_page()
        sign_in(page, charged[0], "zhang")
        assert page.goto(f"{charged[0]}/settlement").status == 403
        assert "Settlement" not in page.locator("nav").inner_text()
    finally:
        context.close()


def test_nothing_was_written_to_the_ledger_by_reading(charged: tuple[str, str, World]) -> None:
    engine = make_sync_engine(charged[1])
    try:
        with engine.connect() as conn:
            count = conn.exec_driver_sql("SELECT count(*) FROM ledger_transactions").scalar()
    finally:
        engine.dispose()
    assert count == 2
