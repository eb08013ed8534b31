"""Sharing worklist reads between the pages of a region: one read serves every page that
needs nothing newer; a page that handled a later event gets a later read, never an older one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ivr.console import live_pages
from ivr.console.live_pages import WorklistReads


class Reads:
    """A stand-in for the database read: counts reads, each one tagged by its number."""

    def __init__(self) -> None:
        self.count = 0
        self.position = "100-0"

    async def __call__(self) -> dict[str, Any]:
        self.count += 1
        await asyncio.sleep(0)  # another page's request arrives meanwhile
        return {"read": self.count}


async def test_pages_that_need_nothing_newer_share_one_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_pages, "WORKLIST_REUSE_S", 0.05)
    reads, shared = Reads(), WorklistReads()
    bodies = await asyncio.gather(*(
        shared.get("county:110105", seen, lambda: reads.position, reads)
        for seen in ("", "99-0", "100-0", "100-0")))
    assert reads.count == 1 and all(body == {"read": 1} for body in bodies)
    # another region reads for itself
    assert await shared.get("county:110106", "", lambda: reads.position, reads) == {"read": 2}
    # a page that handled a later event than the read had: a new read
    reads.position = "101-0"
    assert await shared.get("county:110105", "101-0", lambda: reads.position, reads) == {
        "read": 3}
    # an action of this console forgets them all
    shared.clear()
    assert await shared.get("county:110105", "", lambda: reads.position, reads) == {"read": 4}
