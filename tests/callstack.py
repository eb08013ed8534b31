"""The engine and the simulator running together over TCP, on a generated registry."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from dispatch.citygen import generate_city, sample_numbers
from dispatch.db import make_sync_engine, upgrade, with_schema
from dispatch.models import Call, Elder, ElderPhone, WorkOrder
from ivr.clock import ScaledClock
from ivr.config import Settings, load_settings
from ivr.demo.simproc import SimulatorProcess
from ivr.engine import Engine
from tests.ports import closed_port
from tests.storage import PG_ENV, _pg_admin, rows
from tests.tcp_proxy import CuttableProxy

REDIS_ENV = "HOTLINE_TEST_REDIS_URL"
OPERATORS = [
    {"name": "op1", "answer_delay_s": 2.0, "talk_s": 5.0, "available": True},
    {"name": "op2", "answer_delay_s": 3.0, "talk_s": 5.0, "available": True},
]


async def until(condition: Callable[[], Any], what: str = "", timeout_s: float = 60.0) -> Any:
    """Wait until ``condition()`` (sync or async) is truthy, checked every 50 ms; its value,
    or fail after ``timeout_s`` naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            try:  # a check that never answers (a dead server) fails in time too, named
                value = await asyncio.wait_for(value, max(deadline - loop.time(), 0.05))
            except TimeoutError:
                raise AssertionError(f"no answer while waiting for {what or condition}") from None
        if value:
            return value
        assert loop.time() < deadline, f"timed out waiting for {what or condition}"
        await asyncio.sleep(0.05)


@dataclass
class CallStack:
    db_url: str
    settings: Settings
    engine: Engine | None
    sim: SimulatorProcess
    numbers: dict[str, list[str]] = field(default_factory=dict)
    ami_proxy: CuttableProxy | None = None
    db_proxy: CuttableProxy | None = None  # between the engine and PostgreSQL

    async def call(self, number: str, script: list[dict[str, Any]] | None = None,
                   hangup_after: float | None = None) -> dict[str, Any]:
        """Place a call and return the simulator's record of it, once the engine has also
        finished with it: a flow lets the call go (to the queue, or the hangup) before it
        writes the call record."""
        before = self._sessions_done()
        result = await self.sim.call({"number": number, "name": "", "to": "12349",
                                      "context": "from-pstn", "script": script or [],
                                      "hangup_after": hangup_after})
        if before is not None and result.get("agi"):
            await self._engine_done(before + len(result["agi"]))
        return result

    def _sessions_done(self) -> int | None:
        agi = self.engine.agi if self.engine is not None else None
        return None if agi is None else agi.sessions_served + agi.sessions_failed

    async def _engine_done(self, count: int, timeout_s: float = 30.0) -> None:
        """Until the in-process engine has finished ``count`` FastAGI sessions in all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (self._sessions_done() or 0) < count and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def elder_number(self, language: str, index: int) -> str:
        """The ``index``-th mobile or landline of an elder who prefers ``language``."""
        engine = make_sync_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(
                    select(ElderPhone.number_e164)
                    .join(Elder, Elder.id == ElderPhone.elder_id)
                    .where(Elder.preferred_language == language, ElderPhone.kind != "handset")
                    .order_by(ElderPhone.id).offset(index).limit(1)
                ).scalar_one()
        finally:
            engine.dispose()

    async def poll(self, statement: Any, done: Callable[[list[Any]], bool],
                   timeout_s: float = 60.0) -> list[Any]:
        """Rows of ``statement``, read again until ``done(rows)`` or the timeout passes.

        For what the engine writes after a call has ended (escalations, AMI events).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        engine = make_sync_engine(self.db_url)
        try:
            while True:
                with engine.connect() as conn:
                    rows = list(conn.execute(statement).all())
                if done(rows) or loop.time() > deadline:
                    return rows
                await asyncio.sleep(0.1)
        finally:
            engine.dispose()

    async def poll_while_moving(self, statement: Any, done: Callable[[list[Any]], bool],
                                progress: Any, stall_s: float) -> list[Any]:
        """Rows of ``statement`` once ``done(rows)``, read again for as long as the rows of
        ``progress`` change within ``stall_s``: a loaded machine gets the time it needs, a
        stuck one is given up on (the rows are returned for the caller's assertion)."""
        seen: list[Any] | None = None
        while True:
            rows = await self.poll(statement, done, timeout_s=stall_s)
            if done(rows):
                return rows
            moved = await self.poll(progress, lambda _rows: True)
            if moved == seen:
                return rows
            seen = moved

    def rows(self, statement: Any) -> list[Any]:
        """Rows of ``statement`` read now, through a database engine of its own."""
        return rows(self.db_url, statement)

    def record(self, uniqueid: str) -> tuple[Call | None, WorkOrder | None]:
        engine = make_sync_engine(self.db_url)
        try:
            with engine.connect() as conn:
                call = conn.execute(select(Call).where(Call.uniqueid == uniqueid)).first()
                order = None
                if call is not None and call.order_id is not None:
                    order = conn.execute(
                        select(WorkOrder).where(WorkOrder.id == call.order_id)
                    ).first()
                return call, order
        finally:
            engine.dispose()


def backend_urls(kind: str, folder: Path) -> tuple[str, str, str | None]:
    """(database URL, Redis URL or "" for embedded, PostgreSQL schema to drop)."""
    if kind == "embedded":
        return f"sqlite:///{folder / 'hotline.sqlite3'}", "", None
    base, redis_url = os.environ.get(PG_ENV), os.environ.get(REDIS_ENV)
    if not base or not redis_url:
        pytest.skip(f"{PG_ENV} and {REDIS_ENV} are not set: server variant not run")
    schema = f"calls_{uuid.uuid4().hex[:12]}"
    _pg_admin(base, f'CREATE SCHEMA "{schema}"')
    return with_schema(base, schema), redis_url, schema


@contextlib.contextmanager
def server_backends(folder: Path) -> Iterator[tuple[str, str]]:
    """(PostgreSQL URL on a schema of its own, Redis URL) for the block; the schema is
    dropped after it."""
    db_url, redis_url, schema = backend_urls("server", folder)
    try:
        yield db_url, redis_url
    finally:
        if schema is not None:
            _pg_admin(os.environ[PG_ENV], f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def report_simulator(sim: SimulatorProcess, log: Path, lines: int = 40) -> None:
    """On a failing test, say whether the simulator is still running and show the end of its
    log (pytest prints a failing test's captured output)."""
    state = "running" if sim.process.returncode is None else f"exited {sim.process.returncode}"
    tail = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
    print(f"simulator {state}; last lines of {log}:", *tail, sep="\n")


async def open_stack(kind: str, folder: Path, *, elders: int = 300, speed: float = 60.0,
                     agi_url: str | None = None, engine_overrides: dict[str, Any] | None = None,
                     ami: bool = False, sim_globals: dict[str, str] | None = None,
                     sim_args: tuple[str, ...] = (), ami_proxy: bool = False,
                     db_proxy: bool = False, agi_down: bool = False,
                     clock_start: datetime | None = None) -> AsyncIterator[CallStack]:
    """Engine and simulator on a generated registry; with ``ami_proxy`` the engine's AMI link
    runs through a CuttableProxy (``stack.ami_proxy``), with ``db_proxy`` its PostgreSQL
    connections (``stack.db_proxy``); ``clock_start``: the engine's clock reads that time
    when it starts (a day of the calendar), then runs at ``speed``; with ``agi_down`` the
    engine runs (and links to AMI if asked) but the dialplan's FastAGI address is a port
    nobody listens on."""
    db_url, redis_url, schema = backend_urls(kind, folder)
    upgrade(db_url)
    generate_city(db_url, elders=elders, vendors=5, seed=99)
    numbers = sample_numbers(db_url, 20, 99)
    database: CuttableProxy | None = None
    engine_db_url = db_url
    if db_proxy:
        direct = make_url(db_url)
        database = CuttableProxy(direct.port or 5432)
        engine_db_url = direct.set(port=await database.start()).render_as_string(
            hide_password=False)
    overrides: dict[str, Any] = {
        "database": {"url": engine_db_url},
        "redis": {"url": redis_url, "embedded_path": str(folder / "redis.db"),
                  "key_prefix": f"t{uuid.uuid4().hex[:8]}:"},
        "agi": {"port": 0},
        "ami": {"enabled": False},
        "clock": {"speed": speed},
        "spool": {"dir": str(folder / "spool"), "replay_interval_s": 3600.0},
        "alarms": {"spool_dir": str(folder / "alarms"), "scan_interval_s": 3600.0,
                   "min_age_s": 0.0},
        "care": {"words_dir": str(folder / "care_words")},
        "recordings": {"dir": str(folder / "call_recordings")},
    }
    for section, values in (engine_overrides or {}).items():
        overrides.setdefault(section, {}).update(values)
    settings = load_settings(None, **overrides)
    engine: Engine | None = None
    if agi_url is None:
        clock = (ScaledClock.starting_at(clock_start.timestamp(), speed)
                 if clock_start is not None else None)
        engine = Engine(settings, clock)
        await engine.start(migrate=False, connect_ami=False)
        agi_url = f"agi://127.0.0.1:{closed_port() if agi_down else engine.agi_port}"
    sim = await SimulatorProcess.start(agi_url=agi_url, speed=speed,
                                       log_path=folder / "sim.log", extra_args=sim_args,
                                       globals_={"HOTLINE_SPOOL_DIR": str(folder / "spool"),
                                                 "HOTLINE_RECORDINGS_DIR": str(
                                                     settings.recordings.dir),
                                                 **(sim_globals or {})})
    proxy: CuttableProxy | None = None
    try:
        if ami and engine is not None:
            port = int(sim.ami_port or 0)
            if ami_proxy:
                proxy = CuttableProxy(port)
                port = await proxy.start()
            settings.ami.enabled, settings.ami.port = True, port
            settings.ami.secret = sim.ami_secret
            await engine.start_ami()
        await sim.request("operators", operators=OPERATORS)
        yield CallStack(db_url, settings, engine, sim, numbers, ami_proxy=proxy,
                        db_proxy=database)
    except BaseException:
        report_simulator(sim, folder / "sim.log")
        raise
    finally:
        for opened in (proxy, database):
            if opened is not None:
                await opened.close()
        await sim.stop()
        if engine is not None:
            await engine.stop()
        if schema is not None:
            _pg_admin(os.environ[PG_ENV], f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
