"""The export to the province at scale: ``hotline export`` and ``hotline import-upstream`` run
as the real commands (child processes) on 100,000 and 1,000,000 orders with their timelines
(three events each) on PostgreSQL, against a plain ``COPY`` of the same tables out to files
and back into a scratch table, in the same run.

Reported: wall time and records per second of each, and each command's peak resident memory
(its own VmHWM, read as it exits); the goal is memory flat in the number of records.

Checks: the manifest counts every order and elder; the province's import brings every
record in, and its roll-up counts every order; neither command logs an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from dispatch.db import make_sync_engine, upgrade, with_schema
from dispatch.models import (
    Complaint,
    Elder,
    OrderEvent,
    OrderSource,
    OrderStatus,
    ServiceType,
    UpstreamOrder,
    Vendor,
    WorkOrder,
)
from dispatch.orders import order_no_for
from tests.bench.checks import Bench, error_lines, standalone
from tests.storage import PG_ENV, _pg_admin

SIZES = (100_000, 1_000_000)
SOURCE = "620102"
ELDERS, VENDORS = 20_000, 40
CHUNK = 20_000
SERVICES = (ServiceType.MEAL, ServiceType.HOUSEKEEPING, ServiceType.HEALTH)


def _fill(db_url: str, orders: int, at: datetime) -> None:
    """Elders, vendors, and ``orders`` completed orders with three timeline events each (one
    in twenty with a complaint), in bulk."""
    engine = make_sync_engine(db_url)
    try:
        with engine.begin() as conn:
            elder_ids = conn.execute(insert(Elder).returning(Elder.id), [
                {"name": f"长者{n}", "county_code": SOURCE, "province_code": "620000",
                 "city_code": "620100", "created_at": at} for n in range(ELDERS)]).scalars().all()
            vendor_ids = conn.execute(insert(Vendor).returning(Vendor.id), [
                {"name": f"服务商{n}", "created_at": at} for n in range(VENDORS)]
            ).scalars().all()
        for start in range(0, orders, CHUNK):
            order_ids = range(start + 1, min(orders, start + CHUNK) + 1)  # a fresh table's
            with engine.begin() as conn:
                conn.execute(insert(WorkOrder), [
                    {"id": order, "order_no": order_no_for(order),
                     "elder_id": elder_ids[order % ELDERS], "service": SERVICES[order % 3],
                     "priority": 5, "status": OrderStatus.COMPLETED,
                     "source": OrderSource.PHONE, "created_at": at,
                     "vendor_id": vendor_ids[order % VENDORS], "accepted_at": at,
                     "completed_at": at + timedelta(hours=2), "rating": 1 + order % 5}
                    for order in order_ids])
                conn.execute(insert(OrderEvent), [
                    {"order_id": order, "at": at + timedelta(minutes=minutes), "kind": kind,
                     "detail": {"outcome": "accepted"} if kind == "accepted" else {}}
                    for order in order_ids
                    for minutes, kind in ((0, "created"), (5, "accepted"), (120, "completed"))])
                conn.execute(insert(Complaint), [
                    {"order_id": order, "rating": 1, "opened_at": at + timedelta(hours=3)}
                    for order in order_ids if order % 20 == 0])
        with engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('work_orders', 'id'), "
                              "(SELECT max(id) FROM work_orders))"))
    finally:
        engine.dispose()


# runs the ``hotline`` command and, as it exits, writes its own peak resident memory (VmHWM of
# its address space since exec; a child's ru_maxrss would include its parent's at the fork)
PEAK_WRAPPER = """
import atexit, runpy, sys
peak_file = sys.argv.pop(1)
def note_peak():
    with open("/proc/self/status") as status, open(peak_file, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM")).split()[1])
atexit.register(note_peak)
sys.argv[0] = "hotline"
runpy.run_module("ivr.cli", run_name="__main__")
"""


def _command(args: list[str], env: dict[str, str], log: Path) -> tuple[float, float, str]:
    """Run ``hotline ARGS``: (seconds, its peak resident MiB, its output)."""
    peak_file = log.with_name(f"peak-{args[0]}.txt")
    started = time.perf_counter()
    with log.open("ab") as err:
        done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, str(peak_file), *args],
                              env=env, stdout=subprocess.PIPE, stderr=err, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"hotline {' '.join(args)} failed ({done.returncode}); "
                           f"see {log}")
    return seconds, int(peak_file.read_text()) / 1024, done.stdout.decode()


def _copy_baseline(db_url: str, folder: Path) -> tuple[float, float]:
    """COPY the orders, their events and the elders out to files, then the orders back into a
    scratch table: (seconds out, seconds in)."""
    engine = make_sync_engine(db_url)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            started = time.perf_counter()
            for table in ("work_orders", "order_events", "elders"):
                with (folder / f"{table}.copy").open("wb") as out, \
                        cursor.copy(f"COPY {table} TO STDOUT") as copy:
                    for block in copy:
                        out.write(block)
            copied_out = time.perf_counter() - started
            cursor.execute("CREATE TEMP TABLE scratch (LIKE work_orders)")
            started = time.perf_counter()
            with (folder / "work_orders.copy").open("rb") as source, \
                    cursor.copy("COPY scratch FROM STDIN") as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            copied_in = time.perf_counter() - started
            raw.rollback()
        finally:
            raw.close()
    finally:
        engine.dispose()
    return copied_out, copied_in


def _size(bench: Bench, base: str, orders: int) -> dict[str, Any]:
    folder = bench.run_dir(f"export-{orders}")
    county, province = (f"export_{uuid.uuid4().hex[:10]}" for _ in range(2))
    for schema in (county, province):
        _pg_admin(base, f'CREATE SCHEMA "{schema}"')
    try:
        county_url, province_url = with_schema(base, county), with_schema(base, province)
        upgrade(county_url)
        at = datetime.now(UTC) - timedelta(days=3)
        _fill(county_url, orders, at)
        env = {**os.environ, "HOTLINE_CONFIG": "", "HOTLINE_AMI__ENABLED": "false",
               "HOTLINE_EXPORT__SOURCE": SOURCE,
               "HOTLINE_EXPORT__PSEUDONYM_KEY": uuid.uuid4().hex}
        log = folder / "commands.log"
        out = folder / "batches"
        export_s, export_mib, printed = _command(
            ["export", "--out", str(out)], {**env, "HOTLINE_DATABASE__URL": county_url}, log)
        [batch] = [path for path in out.iterdir() if path.is_dir()]
        manifest = json.loads((batch / "manifest.json").read_text())
        records = sum(entry["records"] for entry in manifest["files"].values())
        megabytes = sum(entry["bytes"] for entry in manifest["files"].values()) / 2**20
        import_s, import_mib, _ = _command(
            ["import-upstream", str(out)], {**env, "HOTLINE_DATABASE__URL": province_url}, log)
        copied_out, copied_in = _copy_baseline(county_url, folder)
        engine = make_sync_engine(province_url)
        try:
            with engine.connect() as conn:
                merged = conn.execute(select(func.count()).select_from(UpstreamOrder)).scalar()
        finally:
            engine.dispose()
        label = f"export {orders:,}"
        bench.expect(f"{label}: orders in the batch", orders,
                     manifest["files"]["orders.jsonl"]["records"])
        bench.expect(f"{label}: elders in the batch", ELDERS,
                     manifest["files"]["elders.jsonl"]["records"])
        bench.expect(f"{label}: orders merged at the province", orders, int(merged or 0))
        bench.expect(f"{label}: the watermark printed", 1, printed.count("until "))
        errors = error_lines(log)
        bench.expect(f"{label}: error lines logged by the commands", 0, len(errors))
        return {"orders": orders, "records (all types)": records, "batch MiB": megabytes,
                "export s": export_s, "export records/s": records / export_s,
                "export peak RSS MiB": export_mib,
                "import s": import_s, "import records/s": records / import_s,
                "import peak RSS MiB": import_mib,
                "baseline: COPY out (orders, events, elders) s": copied_out,
                "baseline: COPY orders back in s": copied_in}
    finally:
        for schema in (county, province):
            _pg_admin(base, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run(bench: Bench, sizes: tuple[int, ...] = SIZES) -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        bench.report("export", {"skipped": f"{PG_ENV} is not set"})
        return
    figures = {orders: _size(bench, base, orders) for orders in sizes}
    for orders, values in figures.items():
        bench.report(f"export to the province and import, {orders:,} orders, PostgreSQL",
                     values)
    if len(sizes) > 1:
        small, large = figures[sizes[0]], figures[sizes[-1]]
        bench.report(f"export: growth from {sizes[0]:,} to {sizes[-1]:,} orders", {
            "records x": large["records (all types)"] / small["records (all types)"],
            "export peak RSS x": large["export peak RSS MiB"] / small["export peak RSS MiB"],
            "import peak RSS x": large["import peak RSS MiB"] / small["import peak RSS MiB"],
            "goal": "memory flat in the number of records"})


if __name__ == "__main__":
    standalone("export", run)
