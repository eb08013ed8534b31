"""``make bench``: every benchmark, each against its baseline measured in the same run."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def report(title: str, figures: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for key, value in figures.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"   {key:<34} {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--only", action="append",
                        choices=["callerid", "calls", "emergency", "dispatch", "speech"])
    parser.add_argument("--elders", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=500)
    args = parser.parse_args()
    chosen = args.only or ["callerid", "calls", "emergency", "dispatch", "speech"]
    started = time.time()
    if "callerid" in chosen:
        from tests.bench import callerid

        callerid.run(report, elders=args.elders)
    if "calls" in chosen:
        from tests.bench import calls

        calls.run(report, calls=args.calls, concurrency=args.concurrency)
    if "emergency" in chosen:
        from tests.bench import emergency

        emergency.run(report)
    if "dispatch" in chosen:
        from tests.bench import dispatch

        dispatch.run(report)
    if "speech" in chosen:
        from tests.bench import speech

        speech.run(report)
    print(json.dumps({"bench_seconds": round(time.time() - started, 1)}))


if __name__ == "__main__":
    main()
