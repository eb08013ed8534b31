"""An elder's caring calls edited from the elder's page in a real Chromium, on a real
database: a plan added, changed and stopped (its waiting round skipped), bad input refused
with nothing written, another region's elder refused with 404 and an audit row."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from dispatch.models import (
    CallPurpose,
    CareKind,
    CarePlan,
    CareQuietDay,
    CareRound,
    OutboundCall,
    OutboundState,
    RoundState,
)
from tests.browser import screenshot
from tests.console_site import audit, rows, write
from tests.console_world import World


def _plans(db_url: str, elder_id: int) -> list[Any]:
    return rows(db_url, select(CarePlan).where(CarePlan.elder_id == elder_id)
                .order_by(CarePlan.id))


def _submit(page: Any, kind: str = "check_in", **fields: str) -> None:
    """Fill the elder page's caring-call form and send it."""
    form = "#care-plan-form"
    page.select_option(f"{form} select[name=kind]", kind)
    for name, value in fields.items():
        page.fill(f"{form} input[name={name}]", value)
    page.click(f"{form} button")


def test_a_caring_call_is_added_changed_and_stopped_from_the_elders_page(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    elder_id = world.elders["李秀英"]
    page.goto(f"{url}/elders/{elder_id}")
    assert "No caring calls planned." in page.inner_text("#care-plan-rows")
    _submit(page, window="09:00-10:30", days="周一、周四", quiet_days="2099-01-01 2099-01-02")
    assert "Caring call added: check_in 09:00-10:30." in page.inner_text("#flash")
    (plan,) = _plans(db_url, elder_id)
    assert (plan.kind, plan.window_start, plan.window_end, plan.weekdays, plan.stopped_at) == (
        CareKind.CHECK_IN, time(9, 0), time(10, 30), 0b1001, None)
    assert page.locator("#care-plan-rows tbody tr").all_inner_texts()[0].split("\t")[:3] == [
        "check_in", "09:00-10:30", "Mon Thu"]
    assert "2099-01-01, 2099-01-02" in page.inner_text("#quiet-days")
    screenshot(page, "care-plans")

    # the same kind and window start: the plan changes, no second one
    _submit(page, window="09:00-11:00", days="daily")
    assert "Caring call changed" in page.inner_text("#flash")
    (plan,) = _plans(db_url, elder_id)
    assert (plan.window_end, plan.weekdays) == (time(11, 0), 0b1111111)

    # stopped: no more rounds; today's round not yet called is skipped, and yesterday's,
    # still calling, loses the try it had scheduled
    now, today = datetime.now(UTC), date.today()
    for day, state in ((today, RoundState.DUE), (today - timedelta(days=1), RoundState.CALLING)):
        write(db_url, insert(CareRound).values(
            plan_id=plan.id, elder_id=elder_id, kind=CareKind.CHECK_IN, day=day, due_at=now,
            until=now + timedelta(hours=1), state=state, tries=0))
    (calling,) = rows(db_url, select(CareRound.id).where(CareRound.state == RoundState.CALLING))
    write(db_url, insert(OutboundCall).values(
        purpose=CallPurpose.CARE_CALL, round_id=calling.id, seq=2, number_e164="+8613800000000",
        tries=2, state=OutboundState.SCHEDULED, due_at=now + timedelta(minutes=10)))
    page.click(f"#care-plan-rows tr[data-plan='{plan.id}'] button")
    assert page.inner_text("#flash") == "Caring call stopped."
    (plan,) = _plans(db_url, elder_id)
    assert plan.stopped_at is not None
    assert rows(db_url, select(CareRound.state, CareRound.outcome)
                .where(CareRound.plan_id == plan.id)) == [
        (RoundState.SKIPPED, "plan_stopped")] * 2
    assert rows(db_url, select(OutboundCall.state).where(
        OutboundCall.round_id == calling.id)) == [(OutboundState.CANCELLED,)]
    assert "stopped" in page.locator(f"#care-plan-rows tr[data-plan='{plan.id}']").inner_text()
    assert len(audit(db_url, "care_plan_saved")) == 2
    assert [row.detail for row in audit(db_url, "care_plan_stopped")] == [{"plan": plan.id}]


def test_bad_caring_call_forms_are_refused_and_write_nothing(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    elder_id = world.elders["王建国"]
    page.goto(f"{url}/elders/{elder_id}")
    token = page.evaluate("hotline.csrfToken()")
    plans = select(func.count()).select_from(CarePlan)
    quiet = select(func.count()).select_from(CareQuietDay)
    before = (rows(db_url, plans)[0][0], rows(db_url, quiet)[0][0])

    def post(**fields: str) -> str:
        answer = page.request.post(f"{url}/elders/{elder_id}/care-plans",
                                   form={"csrf_token": token, **fields})
        assert answer.status == 200, answer.status  # back on the elder's page, with why
        return answer.text()

    refused = {
        "is not check_in, companion or reminder": post(kind="greeting", window="09:00-10:00"),
        "is not a time of day": post(kind="check_in", window="25:00-26:00"),
        "is not HH:MM-HH:MM": post(kind="check_in", window="9点"),
        "is not a day of the week": post(kind="check_in", window="09:00-10:00", days="周八"),
        "a reminder needs the words": post(kind="reminder", window="09:00-10:00"),
        "a companionship call needs its days": post(kind="companion", window="15:00-16:00"),
        "ends_on is before starts_on": post(kind="check_in", window="09:00-10:00",
                                            starts_on="2027-02-01", ends_on="2027-01-01"),
        "message: contains control characters": post(
            kind="reminder", window="09:00-10:00", message="吃药\x1b[2J"),
        "message: at most 200 characters": post(kind="reminder", window="09:00-10:00",
                                                message="药" * 201),
    }
    for reason, answer in refused.items():
        assert "Caring call not saved" in answer and reason in answer, (reason, answer[:300])
    assert (rows(db_url, plans)[0][0], rows(db_url, quiet)[0][0]) == before
    # a script in a reminder's words is kept as text and shown escaped
    post(kind="reminder", window="08:00-09:00", message="<script>window.__pwned=1</script>吃药")
    page.goto(f"{url}/elders/{elder_id}")
    assert "<script>window.__pwned=1</script>吃药" in page.inner_text("#care-plan-rows")
    assert page.evaluate("window.__pwned === undefined")


def test_another_regions_elders_caring_calls_are_404_and_audited(
        console: tuple[str, str, World], page: Any) -> None:
    url, db_url, world = console
    elsewhere = world.elders["孙桂兰"]
    page.goto(f"{url}/")
    token = page.evaluate("hotline.csrfToken()")
    before = rows(db_url, select(func.count()).select_from(CarePlan))[0][0]
    answer = page.request.post(f"{url}/elders/{elsewhere}/care-plans", form={
        "csrf_token": token, "kind": "check_in", "window": "09:00-10:00"})
    assert answer.status == 404
    answer = page.request.post(f"{url}/elders/{elsewhere}/care-plans/1/stop",
                               form={"csrf_token": token})
    assert answer.status == 404
    assert rows(db_url, select(func.count()).select_from(CarePlan))[0][0] == before
    assert [row.target for row in audit(db_url, "care_plan_refused")] == [str(elsewhere)] * 2
    answer = page.request.post(f"{url}/elders/{world.elders['李秀英']}/care-plans", form={
        "kind": "check_in", "window": "09:00-10:00"})  # no CSRF token
    assert answer.status == 403
