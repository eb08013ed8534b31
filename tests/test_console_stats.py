"""The statistics pages in a real Chromium, on a real database: a city supervisor sees the
figures of its counties and of no other region, with the chart of the rates against their
targets, and downloads the same table as CSV; a level above the account's region, a bad
date or a hostile value gets a clear refusal; an operator is refused; views are audited."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from dispatch.accounts import Role
from dispatch.region_stats import COLUMNS
from tests.browser import account, sign_in
from tests.console_site import audit, session_of
from tests.console_world import CHAOYANG, DONGCHENG, HEPING, World

CITY = DONGCHENG[1]


@pytest.fixture(scope="module")
def supervised(console: tuple[str, str, World]) -> tuple[str, str, World]:
    account(console[1], "qian", Role.SUPERVISOR, f"city:{CITY}")
    return console


@pytest.fixture(scope="module")
def signed_in(chromium: Any, supervised: tuple[str, str, World]) -> dict[str, Any]:
    """qian's session: a supervisor of the city of Dongcheng and Chaoyang."""
    return session_of(chromium, supervised[0], "qian")


def test_a_city_supervisor_sees_its_counties_and_downloads_them(
        supervised: tuple[str, str, World], page: Any) -> None:
    url, db_url, _world = supervised
    page.goto(f"{url}/stats?level=county")
    regions = page.locator("#stats tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.region)")
    assert regions == [DONGCHENG[2], CHAOYANG[2], "total"]
    orders = {region: page.locator(f"#stats tr[data-region='{region}'] td").nth(5).inner_text()
              for region in regions}
    assert orders == {DONGCHENG[2]: "1", CHAOYANG[2]: "4", "total": "5"}
    assert HEPING[2] not in page.content() and "和平" not in page.content()
    bars = page.locator("#chart g[data-region='total']")
    assert bars.count() == 6
    assert page.locator("#chart line.target").count() == 2 * len(regions)
    page.select_option("select[name=level]", "city")
    page.click("#stats-form button[type=submit]")
    assert page.locator("#stats tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.region)") == [CITY, "total"]
    got = page.request.get(f"{url}/stats/stats.csv?level=county")
    assert got.status == 200 and "attachment" in got.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(got.body().decode("utf-8-sig"))))
    assert table[0] == list(COLUMNS)
    assert [row[0] for row in table[1:]] == [DONGCHENG[2], CHAOYANG[2], "total"]
    assert table[2][COLUMNS.index("orders_emergency")] == "1"
    viewed = [(row.account_name, row.target, row.detail["level"], row.detail["file"])
              for row in audit(db_url, "stats_viewed")]
    assert {("qian", f"city:{CITY}", "county", "page"), ("qian", f"city:{CITY}", "city", "page"),
            ("qian", f"city:{CITY}", "county", "stats.csv")} <= set(viewed)


@pytest.mark.parametrize(("query", "says"), [
    ("level=province", "Your region is a city"),
    ("level=%3Cscript%3Ealert(1)%3C/script%3E", "level must be"),
    ("from=2026-13-01", "dates YYYY-MM-DD"),
    ("from=2026-11-20&to=2026-11-01", "on or before"),
    ("from=2020-01-01&to=2026-01-01", "at most 366 days"),
])
def test_a_bad_query_is_refused_with_its_reason(supervised: tuple[str, str, World], page: Any,
                                                query: str, says: str) -> None:
    response = page.goto(f"{supervised[0]}/stats?{query}")
    assert response.status == 400
    assert says in page.locator("main").inner_text()
    assert "<script>alert" not in page.content()
    assert page.request.get(f"{supervised[0]}/stats/stats.csv?{query}").status == 400


def test_an_unknown_file_and_an_operator_are_refused(supervised: tuple[str, str, World],
                                                     page: Any, chromium: Any) -> None:
    assert page.request.get(f"{supervised[0]}/stats/other.csv").status == 404
    context = chromium.new_context()
    try:
        operator = context.new_page()
        sign_in(operator, supervised[0], "zhang")
        assert operator.goto(f"{supervised[0]}/stats").status == 403
        assert "Statistics" not in operator.locator("nav").inner_text()
    finally:
        context.close()
