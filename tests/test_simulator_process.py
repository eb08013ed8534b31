"""The simulator a test, a benchmark or the demo starts never outlives the process that
started it, even one killed outright: it ends when its standard input (a pipe from that
process) closes."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.callstack import until
from tests.simharness import ROOT

PARENT = """
import asyncio, sys
sys.path.insert(0, {root!r})
from ivr.demo.simproc import SimulatorProcess

async def main():
    sim = await SimulatorProcess.start(agi_url="agi://127.0.0.1:1")
    print(sim.process.pid, flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def running(pid: int) -> bool:
    """The process exists and is not a zombie left for a parent that no longer waits."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def test_the_simulator_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT.format(root=str(ROOT)), encoding="utf-8")
    parent = await asyncio.create_subprocess_exec(sys.executable, str(script),
                                                  stdout=asyncio.subprocess.PIPE)
    assert parent.stdout is not None
    line = await asyncio.wait_for(parent.stdout.readline(), 60.0)
    pid = int(line)
    assert running(pid)
    parent.kill()  # SIGKILL: no finally, no atexit
    await parent.wait()
    try:
        await until(lambda: not running(pid), "the orphaned simulator to end")
    finally:
        if running(pid):
            os.kill(pid, 9)
