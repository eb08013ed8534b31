"""Recordings in the console, in a real Chromium: a recording is served only by its token,
only to an account whose region covers the elder, each playback and each refusal audited,
and never from a path. (A message on the live worklist, played in the page:
tests/test_messages.py.)"""

from __future__ import annotations

import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dispatch.models import QueueCall, Recording, RecordingKind, WorkOrder
from dispatch.recordings import new_token
from tests.console_site import audit, recordings_dir, rows, write
from tests.console_world import World

SECONDS = 2.0


def a_recording(db_url: str, elder_id: int, name: str, kind: RecordingKind,
                uniqueid: str | None = None) -> tuple[str, bytes]:
    """A recording of ``elder_id`` (a WAV file and its row); its token and the file's bytes."""
    folder = recordings_dir(db_url) / "messages"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(range(256)) * int(8000 * 2 * SECONDS / 256))
    token = new_token()
    write(db_url, Recording.__table__.insert().values(
        token=token, kind=kind.value, uniqueid=uniqueid or f"1796400000.{name}",
        elder_id=elder_id, caller_number="+8613800000011", file=f"messages/{name}.wav",
        started_at=datetime.now(UTC), duration_s=SECONDS))
    return token, path.read_bytes()


@pytest.fixture(scope="module")
def messages(console: tuple[str, str, World]) -> dict[str, tuple[str, bytes]]:
    _url, db_url, world = console
    return {"own": a_recording(db_url, world.elders["李秀英"], "own", RecordingKind.MESSAGE),
            "other": a_recording(db_url, world.elders["孙桂兰"], "other", RecordingKind.CALL)}


def test_a_recording_is_served_by_token_within_the_region_only(
        console: tuple[str, str, World], messages: dict[str, tuple[str, bytes]],
        page: Any) -> None:
    url, db_url, _world = console
    token, data = messages["own"]
    reply = page.request.get(f"{url}/recordings/{token}")
    assert reply.status == 200 and reply.body() == data
    assert reply.headers["content-type"] == "audio/wav"
    assert "no-store" in reply.headers["cache-control"]
    other, _ = messages["other"]
    for asked, elsewhere in ((other, True), (new_token(), False)):
        refused = page.request.get(f"{url}/recordings/{asked}")
        assert refused.status == 404 and b"RIFF" not in refused.body()
        [row] = [row for row in audit(db_url, "recording_refused") if row.target == asked]
        assert row.detail["exists_elsewhere"] is elsewhere and row.account_name == "zhang"
    for path in ("messages/own.wav", "..%2Fconsole.sqlite3", "..%2F..%2Fetc%2Fpasswd"):
        assert page.request.get(f"{url}/recordings/{path}").status == 404
    assert Path(recordings_dir(db_url) / "messages" / "own.wav").exists()


def test_a_recorded_call_plays_on_its_order_page(console: tuple[str, str, World],
                                                 page: Any) -> None:
    url, db_url, world = console
    order_no = world.orders["emergency"]
    [(call, elder_id)] = rows(db_url, select(WorkOrder.call_uniqueid, WorkOrder.elder_id)
                              .where(WorkOrder.order_no == order_no))
    write(db_url, QueueCall.__table__.insert().values(
        uniqueid=call, queued_at=datetime.now(UTC), answered_at=datetime.now(UTC),
        outcome="answered"))  # an operator answered: MixMonitor recorded the call
    token, _data = a_recording(db_url, elder_id, "order-call", RecordingKind.CALL, call)
    page.goto(f"{url}/orders/{order_no}")
    player = page.locator(f'#timeline audio.recording[src="/recordings/{token}"]')
    assert player.count() == 1
    duration = player.evaluate("""audio => new Promise((done, fail) => {
        audio.addEventListener("loadedmetadata", () => done(audio.duration));
        audio.addEventListener("error", () => fail(new Error("not playable")));
        audio.load();
    })""")
    assert duration == pytest.approx(SECONDS, abs=0.05)
    assert [row.target for row in audit(db_url, "recording_played")].count(token) == 1
