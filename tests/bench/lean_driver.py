"""A lean FastAGI load driver: the Asterisk end of recorded calls, many at once, over TCP.

The simulator runs the dialplan, the channels and the media clock for every call, and one
simulator process is slower than the servers it drives. This driver sends only what Asterisk
sends on the FastAGI socket: the environment block (the simulator's own bytes,
``sim.agi.env.env_block``), then, for each command, the reply a real call got to the same
command (a transcript recorded through the simulator). Its own cost per call is a few
socket reads and writes, so it can show one engine process's ceiling.

A command whose verb differs from the transcript's at that step ends the call as a mismatch:
the engine took another path than the recorded one, and the call does not count as done.
``lean_drive`` runs it as ``python -m tests.bench.lean_driver``, a process of its own, with a
JSON request on stdin; it prints one JSON line of figures.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dispatch.stats import percentile
from ivr.event_loop import use_everywhere
from sim.agi.env import env_block

ROOT = Path(__file__).resolve().parents[2]
DONE = "SET VARIABLE HOTLINE_ROUTE done"  # a keypad call's order announced
TO_OPERATOR = "SET VARIABLE HOTLINE_ROUTE operator"  # the call goes on to the operator queue


@dataclass(frozen=True)
class Transcript:
    """One recorded call: its uniqueid, and each command with the reply it got."""

    uniqueid: str
    steps: list[tuple[str, str]]

    @classmethod
    def of(cls, result: dict[str, Any]) -> Transcript:
        """From a simulator call result (its first AGI session's commands)."""
        commands = result["agi"][0]["commands"]
        return cls(result["uniqueid"], [(command, reply) for command, reply, *_ in commands])


def _environment(script_url: str, number: str, uniqueid: str) -> bytes:
    channel = SimpleNamespace(
        name=f"PJSIP/trunk-{uniqueid.replace('.', '')[-8:]}", language="zh", tech="PJSIP",
        uniqueid=uniqueid, caller_num=number, caller_name="", dnid="12349",
        context="from-pstn", exten="12349", priority=2, accountcode="")
    # the dialplan's argument: the linkedid, an inbound call's own uniqueid
    return env_block(channel, script_url, [uniqueid],
                     network_script=script_url.rsplit("/", 1)[-1])


async def play(host: str, port: int, script: str, number: str, uniqueid: str,
               transcript: Transcript, done: str = DONE) -> tuple[str, float | None]:
    """One call: "done" (the engine sent ``done``), "mismatch", or "closed" (the engine
    ended the session before the transcript's end); and the seconds from the connection to
    ``done``."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    reached: float | None = None
    try:
        writer.write(_environment(f"agi://{host}:{port}/{script}", number, uniqueid))
        for expected, reply in transcript.steps:
            line = await reader.readline()
            if not line:
                break
            command = line.decode().rstrip("\n")
            if command.split(" ", 2)[:2] != expected.split(" ", 2)[:2]:
                return "mismatch", None
            if command == done:
                reached = time.perf_counter() - started
            writer.write(reply.replace(transcript.uniqueid, uniqueid).encode() + b"\n")
        return ("closed" if reached is None else "done"), reached
    finally:
        writer.close()


async def drive(request: dict[str, Any]) -> dict[str, Any]:
    """``calls`` calls, ``concurrency`` at a time, through ``host``:``port``."""
    transcript = Transcript(request["uniqueid"], [tuple(s) for s in request["steps"]])
    numbers, prefix = request["numbers"], request["prefix"]
    slots = asyncio.Semaphore(request["concurrency"])
    outcomes: dict[str, str] = {}
    seconds: list[float] = []
    to_done: list[float] = []

    async def one(i: int) -> None:
        uniqueid = f"{prefix}.{i}"
        async with slots:
            started = time.perf_counter()
            try:
                outcomes[uniqueid], reached = await play(
                    request["host"], request["port"], request["script"],
                    numbers[i % len(numbers)], uniqueid, transcript,
                    request.get("done", DONE))
                if reached is not None:
                    to_done.append(reached)
            except OSError as exc:
                outcomes[uniqueid] = f"error: {exc}"
            seconds.append(time.perf_counter() - started)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(request["calls"])))
    elapsed = time.perf_counter() - started
    done = [uniqueid for uniqueid, outcome in outcomes.items() if outcome == "done"]
    return {"calls": request["calls"], "done": done, "seconds": elapsed,
            "not done": sorted({o for o in outcomes.values() if o != "done"}),
            "call p50 ms": percentile(seconds, 50) * 1000,
            "call p99 ms": percentile(seconds, 99) * 1000,
            "connect -> done p50 ms": percentile(to_done, 50) * 1000,
            "connect -> done p99 ms": percentile(to_done, 99) * 1000,
            "driver CPU ms per call": (time.process_time() - cpu) * 1000 / request["calls"]}


async def lean_drive(port: int, transcript: Transcript, numbers: list[str], calls: int,
                     prefix: str, concurrency: int = 200, done: str = DONE
                     ) -> dict[str, Any]:
    """The lean driver, in a process of its own, through 127.0.0.1:``port``: ``calls``
    calls, ``concurrency`` at a time, each done when the engine sends ``done``."""
    request = {"host": "127.0.0.1", "port": port, "script": "inbound", "numbers": numbers,
               "calls": calls, "concurrency": concurrency, "prefix": prefix, "done": done,
               "uniqueid": transcript.uniqueid, "steps": transcript.steps}
    driver = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.lean_driver", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    out, _ = await driver.communicate(json.dumps(request).encode())
    if driver.returncode != 0:
        raise RuntimeError(f"lean driver exited with {driver.returncode}")
    return dict(json.loads(out))


def main() -> None:
    use_everywhere()
    print(json.dumps(asyncio.run(drive(json.loads(sys.stdin.read())))))


if __name__ == "__main__":
    main()
