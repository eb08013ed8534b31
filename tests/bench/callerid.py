"""Caller-ID lookup latency on a large registry (goal: p99 under 2 ms).

Builds, or reuses, a synthetic registry (SQLite file under var/bench/; on PostgreSQL a
schema named after its size, when HOTLINE_TEST_DATABASE_URL is set), then times
``identify()`` one call after another, each in its own session as the engine does, over
a mix of raw caller IDs: elders' mobiles and landlines, handset lines, family members and
unregistered numbers, in the forms Asterisk presents them.

Every lookup must find the caller it should: the elder whose phone (or handset line) the
number is, the elder a family member belongs to, or nobody for an unregistered number; the
registry must hold the elders asked for.

Standalone: ``python -m tests.bench.callerid --elders 1000000``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from dispatch.citygen import generate_city, sample_numbers, summarize
from dispatch.db import (
    async_sessionmaker_for,
    make_async_engine,
    make_sync_engine,
    upgrade,
    with_schema,
)
from dispatch.models import ElderPhone, FamilyContact
from dispatch.phones import national
from dispatch.registry import CallerIdentity, CallerStatus, identify
from tests.bench.checks import Bench, standalone

BENCH_DIR = Path(os.environ.get("HOTLINE_VAR_DIR", "var")) / "bench"
AREA = "931"
SEED = 12349
MIX = {"elders": 0.55, "handsets": 0.10, "family": 0.15, "unknown": 0.20}
EXPECTED = {"elders": CallerStatus.ELDER, "handsets": CallerStatus.ELDER,
            "family": CallerStatus.FAMILY, "unknown": CallerStatus.UNKNOWN}


def sqlite_registry(elders: int) -> tuple[str, float]:
    """URL of a cached SQLite registry of ``elders`` elders; seconds spent building it."""
    path = BENCH_DIR / f"callerid-{elders}-{SEED}.sqlite3"
    url = f"sqlite:///{path}"
    if path.exists():
        upgrade(url)
        if summarize(url).elders == elders:
            return url, 0.0
    _remove_database(path)  # with its -wal/-shm: never a new file beside an old one's journal
    building = path.with_name(path.name + ".building")
    _remove_database(building)
    started = time.perf_counter()
    build_url = f"sqlite:///{building}"
    upgrade(build_url)
    generate_city(build_url, elders=elders, vendors=40, seed=SEED)
    building.rename(path)
    return url, time.perf_counter() - started


def _remove_database(path: Path) -> None:
    """A SQLite file and whatever journal files it left."""
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()


def pg_registry(base_url: str, elders: int) -> tuple[str, float]:
    """URL of a cached PostgreSQL registry (its own schema); seconds spent building it."""
    schema = f"bench_callerid_{elders}"
    url = with_schema(base_url, schema)
    admin = make_sync_engine(base_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        upgrade(url)
        if summarize(url).elders == elders:
            return url, 0.0
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        started = time.perf_counter()
        upgrade(url)
        generate_city(url, elders=elders, vendors=40, seed=SEED)
        with admin.begin() as conn:
            conn.execute(text(f'ANALYZE "{schema}".elder_phones'))
            conn.execute(text(f'ANALYZE "{schema}".family_contacts'))
            conn.execute(text(f'ANALYZE "{schema}".elders'))
        return url, time.perf_counter() - started
    finally:
        admin.dispose()


def _presented(number: str, rng: random.Random) -> str:
    """A registry number as a trunk would present it."""
    digits = national(number)
    roll = rng.random()
    if roll < 0.6:
        return digits  # 13800138000 / 09318123456
    if roll < 0.8:
        return number  # +8613800138000
    if digits.startswith("0931"):
        return digits[4:]  # local landline without area code
    return "0086" + number[3:]


Lookup = tuple[str, str, str]  # kind, raw caller ID, the E.164 number it stands for


def workload(url: str, lookups: int) -> list[Lookup]:
    """(kind, raw caller ID, E.164 number) in the benchmark's mix, deterministic."""
    pool = sample_numbers(url, 2000, seed=SEED)
    rng = random.Random(SEED)
    kinds = list(MIX)
    weights = [MIX[k] for k in kinds]
    work = []
    for _ in range(lookups):
        kind = rng.choices(kinds, weights)[0]
        number = rng.choice(pool[kind])
        work.append((kind, _presented(number, rng), number))
    return work


def owners(url: str, numbers: set[str]) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """For each number: the elders whose own phone it is, and the elders it is a family
    contact of (plain queries, independent of ``identify``)."""
    engine = make_sync_engine(url)
    phones: dict[str, set[int]] = defaultdict(set)
    family: dict[str, set[int]] = defaultdict(set)
    chosen = sorted(numbers)
    try:
        with engine.connect() as conn:
            for at in range(0, len(chosen), 500):
                chunk = chosen[at:at + 500]
                for number, elder_id in conn.execute(
                        select(ElderPhone.number_e164, ElderPhone.elder_id)
                        .where(ElderPhone.number_e164.in_(chunk))):
                    phones[number].add(elder_id)
                for number, elder_id in conn.execute(
                        select(FamilyContact.number_e164, FamilyContact.elder_id)
                        .where(FamilyContact.number_e164.in_(chunk))):
                    family[number].add(elder_id)
    finally:
        engine.dispose()
    return phones, family


def found_expected(kind: str, number: str, who: CallerIdentity,
                   phones: dict[str, set[int]], family: dict[str, set[int]]) -> bool:
    """The lookup found whom the registry says the number belongs to."""
    if who.status is not EXPECTED[kind] or who.number != number:
        return False
    if kind == "unknown":
        return who.elder_id is None and not phones[number] and not family[number]
    owners_of = family[number] if kind == "family" else phones[number]
    return who.elder_id in owners_of and who.handset == (kind == "handsets")


async def measure(url: str, work: list[Lookup], warmup: int = 500) -> dict[str, Any]:
    """Time identify() per lookup; check every answer against the registry."""
    phones, family = owners(url, {number for _, _, number in work})
    engine = make_async_engine(url, pool_size=4)
    sessions = async_sessionmaker_for(engine)
    timings: list[float] = []
    wrong: Counter[str] = Counter()
    try:
        for _kind, raw, _number in work[:warmup]:
            async with sessions() as session:
                await identify(session, raw, AREA)
        started = time.perf_counter()
        for kind, raw, number in work:
            t0 = time.perf_counter_ns()
            async with sessions() as session:
                who = await identify(session, raw, AREA)
            timings.append((time.perf_counter_ns() - t0) / 1e6)
            if not found_expected(kind, number, who, phones, family):
                wrong[kind] += 1
        elapsed = time.perf_counter() - started
    finally:
        await engine.dispose()
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    return {
        "lookups": len(timings),
        "p50_ms": cuts[49],
        "p95_ms": cuts[94],
        "p99_ms": cuts[98],
        "max_ms": max(timings),
        "lookups_per_s (sequential)": len(timings) / elapsed,
        "wrong identities": sum(wrong.values()),
        "wrong identities by kind": dict(wrong) or "-",
        "goal p99 < 2 ms": "met" if cuts[98] < 2.0 else "NOT met",
    }


def _checked(bench: Bench, label: str, url: str, elders: int, figures: dict[str, Any]
             ) -> None:
    bench.expect(f"{label}: elders in the registry", elders, summarize(url).elders)
    bench.expect(f"{label}: lookups that found the expected caller", figures["lookups"],
                 figures["lookups"] - figures["wrong identities"])


def run(bench: Bench, elders: int = 1_000_000, lookups: int = 20_000,
        pg_elders: int | None = None) -> None:
    """Caller-ID benchmark on SQLite, and on PostgreSQL when HOTLINE_TEST_DATABASE_URL is set."""
    url, built = sqlite_registry(elders)
    figures: dict[str, Any] = {"registry elders": elders,
                               "registry build s": round(built, 1) if built else "cached"}
    figures |= asyncio.run(measure(url, workload(url, lookups)))
    _checked(bench, "SQLite", url, elders, figures)
    bench.report(f"caller-ID lookup: SQLite, {elders:,} elders", figures)

    base = os.environ.get("HOTLINE_TEST_DATABASE_URL")
    if not base:
        bench.report("caller-ID lookup: PostgreSQL",
                     {"skipped": "HOTLINE_TEST_DATABASE_URL not set"})
        return
    size = pg_elders if pg_elders is not None else min(elders, 200_000)
    pg_url, built = pg_registry(base, size)
    figures = {"registry elders": size,
               "registry build s": round(built, 1) if built else "cached"}
    if size < elders:
        figures["note"] = f"smaller registry than SQLite's ({size:,}) to keep the build short"
    figures |= asyncio.run(measure(pg_url, workload(pg_url, lookups)))
    _checked(bench, "PostgreSQL", pg_url, size, figures)
    bench.report(f"caller-ID lookup: PostgreSQL, {size:,} elders", figures)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.callerid")
    parser.add_argument("--elders", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--pg-elders", type=int, default=None,
                        help="registry size on PostgreSQL (default: min(elders, 200000))")
    args = parser.parse_args()
    standalone("callerid", lambda bench: run(bench, elders=args.elders, lookups=args.lookups,
                                             pg_elders=args.pg_elders))


if __name__ == "__main__":
    main()
