"""``make bench``: every benchmark, each against its baseline measured in the same run, each
checking its own run (tests/bench/checks.py); exits 1 if any benchmark failed its checks."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable

from ivr.event_loop import use_everywhere
from tests.bench.checks import Bench

BENCHMARKS = ["callerid", "calls", "scaling", "emergency", "faults", "console", "dispatch",
              "care", "settle", "export", "speech"]


def _runners(args: argparse.Namespace) -> dict[str, Callable[[Bench], None]]:
    def callerid(bench: Bench) -> None:
        from tests.bench import callerid as module

        module.run(bench, elders=args.elders)

    def calls(bench: Bench) -> None:
        from tests.bench import calls as module

        module.run(bench, calls=args.calls, concurrency=args.concurrency,
                   classic_calls=args.classic_calls)

    def scaling(bench: Bench) -> None:
        from tests.bench import scaling as module

        module.run(bench)

    def emergency(bench: Bench) -> None:
        from tests.bench import emergency as module

        module.run(bench, calls=args.emergency_calls, hold_s=args.emergency_hold,
                   burst=args.emergency_burst)

    def faults(bench: Bench) -> None:
        from tests.bench import faults as module

        module.run(bench, calls=args.fault_calls)

    def console(bench: Bench) -> None:
        from tests.bench import console as module

        module.run(bench, calls=args.console_calls, hold_s=args.emergency_hold,
                   pages=args.console_pages, clients=args.console_clients)

    def dispatch(bench: Bench) -> None:
        from tests.bench import dispatch as module

        module.run(bench)

    def care(bench: Bench) -> None:
        from tests.bench import care as module

        module.run(bench, elders=args.care_elders, speed=args.care_speed)

    def settle(bench: Bench) -> None:
        from tests.bench import settle as module

        module.run(bench)

    def export(bench: Bench) -> None:
        from tests.bench import export as module

        module.run(bench, tuple(args.export_orders))

    def speech(bench: Bench) -> None:
        from tests.bench import speech as module

        module.run(bench)

    return {"callerid": callerid, "calls": calls, "scaling": scaling, "emergency": emergency,
            "faults": faults, "console": console, "dispatch": dispatch, "care": care,
            "settle": settle, "export": export, "speech": speech}


def main() -> None:
    from tests.bench import care, emergency

    use_everywhere()  # the loop the engine process runs on

    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--only", action="append", choices=BENCHMARKS)
    parser.add_argument("--elders", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--classic-calls", type=int, default=200,
                        help="calls through the classic process-per-call script")
    parser.add_argument("--emergency-calls", type=int, default=emergency.CALLS,
                        help="emergencies arriving at 10 per second")
    parser.add_argument("--emergency-hold", type=float, default=emergency.HOLD_REAL_S,
                        help="seconds each emergency stays up (10 x this are in progress)")
    parser.add_argument("--emergency-burst", type=int, default=emergency.BURST,
                        help="emergencies arriving in the same instant")
    parser.add_argument("--fault-calls", type=int, default=emergency.DISASTER_CALLS,
                        help="handset emergencies in the minute of faults")
    parser.add_argument("--console-calls", type=int, default=600,
                        help="emergencies arriving at 10 per second while consoles watch")
    parser.add_argument("--console-pages", type=int, default=4,
                        help="real Chromium pages among the consoles (one more signs in "
                             "for the plain clients)")
    parser.add_argument("--console-clients", type=int, default=100,
                        help="consoles connected in all")
    parser.add_argument("--care-elders", type=int, default=care.ELDERS,
                        help="check-ins due in one morning window")
    parser.add_argument("--care-speed", type=float, default=care.SPEED,
                        help="simulated seconds per second for the caring calls")
    parser.add_argument("--export-orders", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="orders exported and imported, one run per size")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    chosen = args.only or BENCHMARKS
    runners = _runners(args)
    started = time.time()
    failed: list[Bench] = []
    for name in chosen:
        with Bench(name) as bench:
            runners[name](bench)
        if not bench.passed:
            failed.append(bench)
    print(json.dumps({"bench_seconds": round(time.time() - started, 1)}))
    if failed:
        print("bench: INVALID, checks failed: " + " | ".join(
            f"{bench.name}: {'; '.join(bench.failures)}" for bench in failed))
        sys.exit(1)
    print(f"bench: all checks passed ({', '.join(chosen)})")


if __name__ == "__main__":
    main()
