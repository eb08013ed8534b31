"""Starting and stopping a simulator AMI server subprocess for tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_server(*args: str) -> tuple[subprocess.Popen[str], int]:
    """Run tests.sim_ami.serve with ``args``; return the process and its AMI port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sim_ami.serve", *args], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"AMI server did not start: {line!r} {proc.stderr.read()!r}")
    return proc, int(line.split()[1])


def stop_server(proc: subprocess.Popen[str]) -> str:
    """Stop the server; return what it wrote on stderr."""
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err
