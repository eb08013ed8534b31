"""In-flight emergency records on a real file system, with real processes and flock: a live
process's records are never adopted; a process killed with SIGKILL leaves them, and the next
adoption moves each into the spool once, in the dialplan's record format."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from agi_scripts.emergency_spool import spool_record
from dispatch.spool_replay import parse_record
from ivr.inflight_orders import INFLIGHT, InflightOrders, adopt_orphans

HOLDER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from agi_scripts.emergency_spool import spool_record
from ivr.inflight_orders import InflightOrders
held = InflightOrders(Path(sys.argv[1]))
now = datetime.now(UTC)
for uid in sys.argv[2:]:
    held.hold(spool_record(uid, uid, "PJSIP/x", "+8613800000000", "", "handset_emergency",
                           "", now), now)
print("held", flush=True)
sys.stdin.read()
"""


def record(uniqueid: str) -> dict[str, object]:
    return spool_record(uniqueid, uniqueid, "PJSIP/trunk-1", "+8613800000001", "",
                        "handset_emergency", "", datetime.now(UTC))


def spooled(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.json"))


def holder(spool: Path, *uniqueids: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(spool), *uniqueids],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_a_live_process_keeps_its_records_and_releases_them(tmp_path: Path) -> None:
    held = InflightOrders(tmp_path)
    first = held.hold(record("1.1"), datetime.now(UTC))
    second = held.hold(record("1.2"), datetime.now(UTC))
    assert first is not None and second is not None
    assert adopt_orphans(tmp_path) == [] and spooled(tmp_path) == []
    assert parse_record(first.read_bytes()).uniqueid == "1.1"
    held.release(first)
    held.release(first)  # twice is harmless
    assert not first.exists() and second.exists()
    held.release(second)
    held.close()
    assert list((tmp_path / INFLIGHT).iterdir()) == []  # a clean stop leaves no folder


def test_a_killed_process_leaves_its_records_to_the_next_adoption(tmp_path: Path) -> None:
    alive = holder(tmp_path, "2.1")
    killed = holder(tmp_path, "3.1", "3.2")
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        names = adopt_orphans(tmp_path)
        assert len(names) == 2
        records = [parse_record(path.read_bytes()) for path in spooled(tmp_path)]
        assert sorted(r.uniqueid for r in records) == ["3.1", "3.2"]
        assert {r.reason for r in records} == {"handset_emergency"}
        assert adopt_orphans(tmp_path) == []  # once
        [folder] = (tmp_path / INFLIGHT).iterdir()  # the live holder's, untouched
        assert [json.loads(p.read_text())["uniqueid"] for p in folder.glob("*.json")] == ["2.1"]
    finally:
        alive.kill()
        alive.wait(10)
    assert adopt_orphans(tmp_path) != [] and len(spooled(tmp_path)) == 3


def test_an_unwritable_spool_is_logged_and_the_call_goes_on(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "spool"
    blocker.write_text("a file where the folder should be")
    held = InflightOrders(blocker)
    assert held.hold(record("4.1"), datetime.now(UTC)) is None
    assert "in-flight record of emergency call 4.1 not written" in caplog.text
    held.release(None)
    held.close()
