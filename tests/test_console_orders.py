"""The console's order pages in a real Chromium, on a real database: search, timeline,
region refusals by URL (404 and an audit row), escaped addresses, CSRF refusals, escalated
orders assigned and cancelled, an alarm closed and bridged through the shared services,
bad input refused with nothing written. The console, its registry and zhang's signed-in
page are tests/console_site.py's fixtures."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from dispatch.models import AuditEntry, OrderEvent, WorkOrder
from tests.browser import screenshot, sign_in
from tests.console_site import audit, rows
from tests.console_world import SCRIPT_ADDRESS, World


def _order(db_url: str, order_no: str) -> Any:
    (row,) = rows(db_url, select(WorkOrder).where(WorkOrder.order_no == order_no))
    return row


def _events(db_url: str, order_no: str) -> list[Any]:
    return rows(db_url, select(OrderEvent.kind, OrderEvent.detail)
                .join(WorkOrder, WorkOrder.id == OrderEvent.order_id)
                .where(WorkOrder.order_no == order_no).order_by(OrderEvent.id))


def test_search_finds_the_regions_orders_and_shows_the_timeline(
        console: tuple[str, str, World], page: Any) -> None:
    url, _db, world = console
    page.goto(f"{url}/orders")
    page.fill("#order-search input[name=q]", "李秀英")
    page.click("#order-search button")
    links = page.locator("table.orders td:first-child a").all_inner_texts()
    assert sorted(links) == sorted([world.orders["chaoyang"], world.orders["escalated"]])
    page.fill("#order-search input[name=q]", "孙桂兰")  # another province's elder
    page.click("#order-search button")
    assert "No order matches in your region." in page.inner_text("main")
    page.goto(f"{url}/orders/{world.orders['chaoyang']}")
    assert page.inner_text("#order-status") == "completed"
    assert page.locator("#timeline tbody tr").all_inner_texts()[0].split("\t")[1] == "created"
    screenshot(page, "order")


def test_another_regions_order_or_elder_by_url_is_404_and_audited(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    for label in ("heping", "dongcheng"):
        response = page.goto(f"{url}/orders/{world.orders[label]}")
        assert response.status == 404
        assert f"No order {world.orders[label]} in your region." in page.inner_text("main")
        assert "孙桂兰" not in page.content() and "赵淑珍" not in page.content()
    refused = {row.target: row for row in audit(db_url, "order_refused")}
    assert refused[world.orders["heping"]].account_name == "zhang"
    assert refused[world.orders["heping"]].detail == {"exists_elsewhere": True}
    assert refused[world.orders["heping"]].address == "127.0.0.1"
    assert page.goto(f"{url}/orders/12345678").status == 404  # no such order at all
    assert refused_now(db_url)["12345678"].detail == {"exists_elsewhere": False}
    response = page.goto(f"{url}/elders/{world.elders['孙桂兰']}")
    assert response.status == 404
    assert [row.target for row in audit(db_url, "elder_refused")] == [
        str(world.elders["孙桂兰"])]


def refused_now(db_url: str) -> dict[str, Any]:
    return {row.target: row for row in audit(db_url, "order_refused")}


def test_script_in_an_address_is_shown_as_text_never_run(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    elder_id = world.elders["王建国"]
    page.goto(f"{url}/elders/{elder_id}")
    assert page.inner_text("#elder-address") == SCRIPT_ADDRESS
    page.goto(f"{url}/orders/{world.orders['emergency']}")
    assert page.inner_text("#elder-address") == SCRIPT_ADDRESS
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("main img").count() == 0
    assert [row.target for row in audit(db_url, "elder_viewed")] == [str(elder_id)]
    page.goto(f"{url}/elders/{elder_id}")
    screenshot(page, "elder")
    assert len(audit(db_url, "elder_viewed")) == 2  # every view is audited


def test_a_form_posted_without_its_csrf_token_is_refused(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    count = select(func.count()).select_from(WorkOrder)
    before = rows(db_url, count)[0][0]
    fields = {"elder_id": str(world.elders["李秀英"]), "service": "meal"}
    refused = page.request.post(f"{url}/orders/new", form=fields)
    assert refused.status == 403 and "security token" in refused.text()
    wrong = page.request.post(f"{url}/orders/new", form={**fields, "csrf_token": "forged"})
    assert wrong.status == 403
    # the same through the page: the hidden token removed from the cancel form
    order_no = world.orders["escalated2"]
    page.goto(f"{url}/orders/{order_no}")
    page.evaluate("document.querySelector('#cancel-form input[name=csrf_token]').remove()")
    page.fill("#cancel-form input[name=reason]", "无令牌")
    with page.expect_response(f"{url}/orders/{order_no}/cancel") as posted:
        page.click("#cancel-form button")
    assert posted.value.status == 403
    assert rows(db_url, count)[0][0] == before
    assert _order(db_url, order_no).status.value == "escalated"


def test_escalated_orders_are_assigned_by_hand_or_cancelled_with_a_reason(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    page.goto(f"{url}/orders/escalated")
    listed = page.locator("table.orders td:first-child a").all_inner_texts()
    assert sorted(listed) == sorted([world.orders["escalated"], world.orders["escalated2"]])
    screenshot(page, "escalated")
    page.click(f"text={world.orders['escalated']}")
    page.select_option("#assign-form select[name=vendor_id]", str(world.vendor_id))
    page.click("#assign-form button")
    assert page.inner_text("#flash").startswith(f"Order {world.orders['escalated']} assigned")
    assert page.inner_text("#order-status") == "accepted"
    assert _order(db_url, world.orders["escalated"]).vendor_id == world.vendor_id
    page.goto(f"{url}/orders/{world.orders['escalated2']}")
    page.fill("#cancel-form input[name=reason]", "老人住院，不需要了")
    page.click("#cancel-form button")
    assert page.inner_text("#order-status") == "cancelled"
    assert _events(db_url, world.orders["escalated2"])[-1] == (
        "cancelled_by_operator", {"reason": "老人住院，不需要了", "by": "zhang"})
    assert {row.action for row in rows(db_url, select(AuditEntry))} >= {
        "assigned_by_hand", "cancelled_by_operator"}
    page.goto(f"{url}/orders/escalated")
    assert "No escalated order in your region." in page.inner_text("main")


def test_an_alarm_is_bridged_and_closed_through_the_shared_services(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    order_no = world.orders["emergency"]
    page.goto(f"{url}/orders/{order_no}")
    page.click("#bridge-buttons button[value='120']")
    assert "Asterisk unavailable" in page.inner_text("#flash")
    kind, detail = _events(db_url, order_no)[-1]
    assert (kind, detail["target"], detail["outcome"]) == ("bridged", "120", "failed")
    assert page.locator("#timeline tr.event-bridged").count() == 1
    page.select_option("#close-form select[name=disposition]", "accidental")
    page.fill("#close-form input[name=note]", "老人误按")
    page.click("#close-form button")
    assert page.inner_text("#order-status") == "cancelled"
    assert _events(db_url, order_no)[-1] == ("alarm_closed", {
        "disposition": "accidental", "closed_by": "zhang", "note": "老人误按"})
    audit = {row.action: row for row in rows(db_url, select(AuditEntry))}
    assert audit["alarm_closed"].target == order_no
    assert audit["bridge"].detail["target"] == "120"
    assert page.locator("#close-form").count() == 0  # closed: no second disposition


def test_call_back_goes_through_the_shared_service_and_only_in_the_region(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    order_no = world.orders["chaoyang"]
    page.goto(f"{url}/orders/{order_no}")
    page.click("#call-back-buttons button[value='+8613800000011']")
    assert "ami_unreachable" in page.inner_text("#flash")
    kind, detail = _events(db_url, order_no)[-1]
    assert (kind, detail["seat"], detail["outcome"]) == ("called_back", "op1001",
                                                         "ami_unreachable")
    assert page.locator("#timeline tr.event-called_back").count() == 1
    assert [(row.target, row.detail["outcome"]) for row in audit(db_url, "call_back")] == [
        (order_no, "ami_unreachable")]
    # the same form aimed at another region's order: 404 and audited, nothing placed
    other = world.orders["heping"]
    page.evaluate(f"document.querySelector('#call-back-buttons form').action = "
                  f"'/orders/{other}/call-back'")
    with page.expect_response(f"{url}/orders/{other}/call-back") as posted:
        page.click("#call-back-buttons button")
    assert posted.value.status == 404
    assert refused_now(db_url)[other].account_name == "zhang"
    assert len(audit(db_url, "call_back")) == 1


def test_the_live_screens_call_back_is_region_checked_and_recorded(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    page.goto(f"{url}/orders")

    def post(fields: dict[str, str]) -> tuple[int, str]:
        return tuple(page.evaluate(
            """async (fields) => {
                 const reply = await window.hotline.post("/calls/call-back", fields);
                 return [reply.status, await reply.text()];
               }""", fields))

    before = len(audit(db_url, "call_back"))
    # a screen-pop card's elder of the region, on one of their phones: placed (AMI is out of
    # reach here) and recorded
    status, body = post({"elder_id": str(world.elders["李秀英"]), "number": "+8613800000011"})
    assert status == 502 and "ami_unreachable" in body
    assert len(audit(db_url, "call_back")) == before + 1
    # another region's elder, a number not theirs, another region's order, an unknown call
    refused = [post({"elder_id": str(world.elders["孙桂兰"]), "number": "+8613800000031"}),
               post({"elder_id": str(world.elders["李秀英"]), "number": "+8613800000031"}),
               post({"elder_id": str(world.elders["李秀英"]), "number": "+8613800000011",
                     "order_no": world.orders["heping"]}),
               post({"call": "1700000000.999"}), post({"call": "1.1&PJSIP/x"})]
    assert [code for code, _ in refused] == [404, 400, 404, 404, 400]
    assert len(audit(db_url, "call_back")) == before + 1


def test_an_account_without_a_seat_sees_why_it_cannot_call_back(
        chromium: Any, console: tuple[str, str, World]) -> None:
    url, db_url, world = console
    context = chromium.new_context()
    try:
        page = context.new_page()
        sign_in(page, url, "wu")
        page.goto(f"{url}/orders/{world.orders['chaoyang']}")
        button = page.locator("#call-back-buttons button")
        assert button.is_disabled()
        assert "no softphone seat" in page.inner_text("#call-back-blocked")
        page.evaluate("document.querySelector('#call-back-buttons button').disabled = false")
        button.click()  # forced: the server refuses it too, and places nothing
        assert "no softphone seat" in page.inner_text("#flash")
    finally:
        context.close()
    assert "wu" not in [row.account_name for row in audit(db_url, "call_back")]


def test_an_order_is_entered_by_hand_for_an_elder_found_by_name(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    page.goto(f"{url}/orders/new")
    page.fill("#elder-search input[name=q]", "赵淑珍")  # another county: not found
    page.click("#elder-search button")
    assert "No elder of your region matches." in page.inner_text("main")
    page.fill("#elder-search input[name=q]", "李秀英")
    page.click("#elder-search button")
    page.select_option("#new-order-form select[name=service]", "housekeeping")
    page.fill("#new-order-form textarea[name=note]", "<b>周三上午</b>\n\u3000少盐")
    screenshot(page, "new-order")
    page.click("#new-order-form button")
    assert page.inner_text("#order-status") == "new"
    order_no = page.url.rsplit("/", 1)[1]
    order = _order(db_url, order_no)
    assert (order.elder_id, order.source.value, order.requested_by) == (
        world.elders["李秀英"], "operator", "zhang")
    assert "note: <b>周三上午</b>" in page.inner_text("#timeline")
    assert _events(db_url, order_no)[0][1]["note"] == "<b>周三上午</b>\n\u3000少盐"


def test_bad_input_gets_a_clear_answer_and_writes_nothing(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    page.goto(f"{url}/")
    token = page.evaluate("hotline.csrfToken()")
    count = select(func.count()).select_from(WorkOrder)
    before = rows(db_url, count)[0][0]

    def post(path: str, **fields: str) -> Any:
        return page.request.post(f"{url}{path}", form={"csrf_token": token, **fields})

    elder = str(world.elders["李秀英"])
    answer = post("/orders/new", elder_id="abc", service="meal")
    assert answer.status == 400 and "elder_id: a whole number" in answer.text()
    answer = post("/orders/new", elder_id=elder, service="emergency")
    assert answer.status == 400 and "service: not one of the offered choices" in answer.text()
    answer = post("/orders/new", elder_id=elder, service="meal", note="长" * 501)
    assert answer.status == 400 and "note: at most 500 characters" in answer.text()
    answer = post("/orders/new", elder_id="99999999999", service="meal")
    assert answer.status == 400
    answer = post("/orders/new", elder_id=elder, service="meal", note="一\x1b[2J二")
    assert answer.status == 400 and "note: contains control characters" in answer.text()
    answer = post("/orders/new", elder_id=elder, service="meal", call="1.2\r\nAction: x")
    assert answer.status == 400 and "call: contains control characters" in answer.text()
    answer = page.request.post(f"{url}/orders/new", headers={
        "Content-Type": "application/x-www-form-urlencoded"},
        data=f"csrf_token={token}&elder_id={elder}&elder_id={elder}&service=meal")
    assert answer.status == 400 and "elder_id: given more than once" in answer.text()
    answer = page.request.post(f"{url}/orders/new", headers={
        "Content-Type": "application/x-www-form-urlencoded"},
        data=f"csrf_token={token}&elder_id=%FF%FE&service=meal")
    assert answer.status == 400
    answer = post("/orders/new", elder_id=elder, service="meal", note="x" * 70_000)
    assert answer.status == 413
    answer = post(f"/orders/{world.orders['dongcheng']}/cancel", reason="越权")
    assert answer.status == 404
    assert rows(db_url, count)[0][0] == before
    assert _order(db_url, world.orders["dongcheng"]).status.value == "new"
    for path in ("/orders/abc", "/orders/99999999", f"/elders/{2**40}", "/nowhere"):
        response = page.goto(f"{url}{path}")
        assert response.status == 404, path
