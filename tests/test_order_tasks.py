"""Background work per order (family escalations, emergency call-backs): a job that fails is
reported when it ends, naming its order, never left as an unretrieved task exception."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from ivr.order_tasks import OrderTasks


async def _the_job() -> asyncio.Task[object]:
    (task,) = asyncio.all_tasks() - {asyncio.current_task()}
    await asyncio.wait([task])
    return task


async def test_a_failed_job_is_logged_as_it_ends_naming_its_order(
        caplog: pytest.LogCaptureFixture) -> None:
    async def escalate() -> None:
        raise RuntimeError("database disk image is malformed")

    jobs = OrderTasks("family escalation")
    assert jobs.start(7, escalate)
    task = await _the_job()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["family escalation of order 7 failed: database disk image is malformed"]
    assert 7 not in jobs
    del task
    gc.collect()  # the exception was retrieved: no "Task exception was never retrieved"
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


async def test_jobs_cancelled_at_close_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    started = asyncio.Event()

    async def waits() -> None:
        started.set()
        await asyncio.Event().wait()

    jobs = OrderTasks("emergency call-back")
    assert jobs.start(3, waits)
    assert not jobs.start(3, waits)  # one job per order
    await started.wait()
    await jobs.close()
    assert 3 not in jobs
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_close_cancels_again_a_job_that_swallowed_its_cancel_and_starts_no_more(
        caplog: pytest.LogCaptureFixture) -> None:
    cancels = 0
    started = asyncio.Event()

    async def stubborn() -> None:
        nonlocal cancels
        started.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancels += 1
                if cancels > 1:
                    raise
                # the first cancel is lost, as a library may lose one

    jobs = OrderTasks("family escalation")
    assert jobs.start(5, stubborn)
    await started.wait()
    await asyncio.wait_for(jobs.close(again_after_s=0.05), 30)
    assert cancels == 2 and 5 not in jobs
    assert not jobs.start(6, stubborn)  # closed: the stopping process takes nothing new
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
