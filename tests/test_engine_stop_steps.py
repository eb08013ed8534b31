"""A stop step that overruns is logged naming where it hangs (its own task included), then
cancelled; one that fails is logged; neither holds the stop up."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.engine import _bounded_step


async def stuck_in_here(cancelled: asyncio.Event) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        cancelled.set()


async def test_an_overrunning_step_names_where_it_hangs_and_is_cancelled(
        caplog: pytest.LogCaptureFixture) -> None:
    cancelled = asyncio.Event()
    with caplog.at_level(logging.ERROR, "ivr.engine"):
        await asyncio.wait_for(_bounded_step("a step", lambda: stuck_in_here(cancelled), 0.05),
                               30)
    assert cancelled.is_set()
    [record] = caplog.records
    assert "a step did not stop within" in record.getMessage()
    # the step's own task, named before its cancel, and first
    assert "(the step: stuck_in_here" in record.getMessage()


async def test_a_failing_step_is_logged_and_the_stop_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    async def failing() -> None:
        raise RuntimeError("pool gone")

    with caplog.at_level(logging.ERROR, "ivr.engine"):
        await _bounded_step("pool", failing, 30)
    [record] = caplog.records
    assert "stopping pool failed" in record.getMessage()
    assert record.exc_info is not None and "pool gone" in str(record.exc_info[1])
