"""The ``hotline`` console command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ivr.config import AmiSettings, ConfigError, Settings, load_settings, shown_settings
from ivr.logmask import JsonLines, install_masking_filter

if TYPE_CHECKING:
    from dispatch.care_plans import CareHours


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def cmd_engine(args: argparse.Namespace) -> int:
    from ivr.engine import serve_forever

    settings = _settings(args)
    _configure_logging(settings.log_level, settings.log_format)
    from ivr.event_loop import runner

    with contextlib.suppress(KeyboardInterrupt), runner() as loop:
        loop.run(serve_forever(settings))
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    shown = shown_settings(_settings(args))
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from dispatch.db import upgrade

    upgrade(_settings(args).database.url)
    print("database schema is up to date")
    return 0


def cmd_city_generate(args: argparse.Namespace) -> int:
    from dispatch.citygen import generate_city
    from dispatch.db import upgrade

    url = _settings(args).database.url
    upgrade(url)
    summary = generate_city(url, elders=args.elders, vendors=args.vendors, seed=args.seed)
    print(summary)
    return 0


def cmd_registry_import(args: argparse.Namespace) -> int:
    from dispatch.db import upgrade
    from dispatch.importer import import_registry_csv

    url = _settings(args).database.url
    upgrade(url)
    report = import_registry_csv(url, Path(args.csv))
    print(report)
    return 0 if report.ok and not report.errors else 1


def care_hours(settings: Settings) -> CareHours:
    from dispatch.care_plans import CareHours

    return CareHours(ZoneInfo(settings.dispatch.timezone), settings.care.allowed_from,
                     settings.care.allowed_until)


def cmd_care(args: argparse.Namespace) -> int:
    """Caring calls: import plans, add a holiday campaign, write a day's rounds."""
    from dispatch.care_calendar import CalendarError, Festival
    from dispatch.care_import import import_care_plans
    from dispatch.care_plans import add_campaign, open_campaign_rounds, open_plan_rounds
    from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade
    from dispatch.models import SubsidyCategory

    settings = _settings(args)
    url = settings.database.url
    upgrade(url)
    if args.action == "import":
        if not args.csv:
            print("hotline: care import needs the CSV file", file=sys.stderr)
            return 2
        report = import_care_plans(url, Path(args.csv))
        print(report)
        return 0 if report.ok else 1

    async def run() -> str:
        engine = make_async_engine(url, pool_size=1)
        try:
            async with async_sessionmaker_for(engine)() as session:
                if args.action == "campaign":
                    if args.festival not in set(Festival) or not args.year:
                        raise ValueError("care campaign needs --festival (one of "
                                         f"{', '.join(Festival)}) and --year")
                    if args.category is not None and args.category not in set(SubsidyCategory):
                        raise ValueError(f"unknown subsidy category {args.category!r}")
                    campaign = await add_campaign(
                        session, Festival(args.festival), args.year, county_code=args.county,
                        subsidy_category=args.category, message=args.message,
                        at=datetime.now(UTC))
                    return f"campaign {campaign}: {args.festival} {args.year}"
                hours = care_hours(settings)
                day = (date.fromisoformat(args.date) if args.date
                       else datetime.now(hours.tz).date())
                plans = await open_plan_rounds(session, day, hours)
                greetings = await open_campaign_rounds(session, day, hours)
                return f"{day}: {plans} planned calls and {greetings} greetings written"
        finally:
            await engine.dispose()

    try:
        print(asyncio.run(run()))
    except (CalendarError, ValueError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    from ivr.prompt_files import check_prompts, import_recordings
    from ivr.prompts import PROMPTS_DIR, CatalogueError, PromptCatalogue, build

    catalogue = PromptCatalogue.load()
    folder = Path(args.dir) if args.dir else PROMPTS_DIR
    try:
        if args.action == "build":
            written = build(catalogue, folder, names=args.names)
            print(f"{len(written)} prompts written")
            return 0
        if args.action == "import":
            if len(args.names) != 1:
                print("hotline: prompts import takes one folder of recordings", file=sys.stderr)
                return 2
            report = import_recordings(Path(args.names[0]), catalogue, folder, args.language)
            print(report)
            return 1 if report.refused else 0
    except (CatalogueError, ValueError, OSError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    problems = check_prompts(catalogue, folder)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) in {folder}")
    return 1 if problems else 0


def cmd_elder_no_menu(args: argparse.Namespace) -> int:
    from dispatch.registry import set_no_menu

    found = asyncio.run(_in_session(_settings(args).database.url, lambda s: set_no_menu(
        s, args.elder_id, args.state == "on")))
    if not found:
        print(f"hotline: no elder {args.elder_id}", file=sys.stderr)
        return 1
    print(f"elder {args.elder_id}: no menu {args.state}")
    return 0


async def _in_session(url: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade

    await asyncio.to_thread(upgrade, url)
    engine = make_async_engine(url, pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            return await work(session)
    finally:
        await engine.dispose()


def _utc(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_report_alarms(args: argparse.Namespace) -> int:
    from dispatch.alarm_report import alarm_report, default_period, format_alarm_report

    now = datetime.now(UTC)
    since, until = default_period(now)
    since, until = _utc(args.since) or since, _utc(args.until) or until
    report = asyncio.run(_in_session(_settings(args).database.url,
                                     lambda s: alarm_report(s, since, until, now)))
    print(format_alarm_report(report))
    return 0


def cmd_report_vendors(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from dispatch.vendor_report import (
        format_vendor_report,
        parse_month,
        previous_month,
        vendor_report,
        vendor_report_json,
    )

    now = datetime.now(UTC)
    settings = _settings(args)
    try:
        tz = ZoneInfo(args.tz or settings.dispatch.timezone)
        year, month = parse_month(args.month) if args.month else previous_month(now, tz)
        report = asyncio.run(_in_session(settings.database.url, lambda s: vendor_report(
            s, year=year, month=month, tz=tz, now=now, bottom=args.bottom)))
    except (ValueError, ZoneInfoNotFoundError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(vendor_report_json(report), indent=2, ensure_ascii=False))
    else:
        print(format_vendor_report(report))
    return 0


def cmd_report_audit(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from dispatch.audit import entries_since, format_entries

    try:
        since = _utc(args.since) or datetime.now(UTC) - timedelta(days=1)
        until = _utc(args.until)
    except ValueError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    rows = asyncio.run(_in_session(_settings(args).database.url,
                                   lambda s: entries_since(s, since, until)))
    print(format_entries(rows))
    return 0


def cmd_report_care(args: argparse.Namespace) -> int:
    from dispatch.care_report import care_report, format_care_report

    settings = _settings(args)
    tz = ZoneInfo(settings.dispatch.timezone)
    try:
        day = date.fromisoformat(args.date) if args.date else datetime.now(tz).date()
    except ValueError as exc:
        print(f"hotline: --date: {exc}", file=sys.stderr)
        return 2
    report = asyncio.run(_in_session(
        settings.database.url,
        lambda s: care_report(s, day, settings.dispatch.trunk_channels)))
    print(format_care_report(report))
    return 0


def _settlement_files(args: argparse.Namespace, close: bool) -> int:
    """Close a county's month (``close``) or read a month's settlement; print it and write
    its CSV and XLSX files to ``--out``."""
    from dispatch.ledger import LedgerError, to_fen
    from dispatch.settlement import close_month, settlement
    from dispatch.settlement_export import write_settlement

    settings = _settings(args)
    deduction = to_fen(settings.money.upheld_complaint_deduction_yuan)
    if not args.month or not args.county:
        print("hotline: --month YYYY-MM and --county CODE are required", file=sys.stderr)
        return 2

    def work(session: Any) -> Any:
        if close:
            return close_month(session, args.county, args.month, args.by or "cli",
                               datetime.now(UTC), ZoneInfo(settings.dispatch.timezone),
                               deduction)
        return settlement(session, args.county, args.month, deduction)

    try:
        report = asyncio.run(_in_session(settings.database.url, work))
    except LedgerError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    state = f"closed {report.closed_at:%Y-%m-%d %H:%M} UTC" if report.closed_at else "open"
    print(f"settlement of county {report.county}, {report.month} ({state}): "
          f"{len(report.vendors)} vendors, {report.total_fen / 100:.2f} yuan")
    for path in write_settlement(report, Path(args.out)):
        print(f"  {path}")
    return 0


def cmd_settle(args: argparse.Namespace) -> int:
    return _settlement_files(args, close=True)


def cmd_report_settlement(args: argparse.Namespace) -> int:
    return _settlement_files(args, close=False)


def cmd_report_stats(args: argparse.Namespace) -> int:
    from dispatch.alarm_report import default_period
    from dispatch.region_stats import (
        COLUMNS,
        area_of,
        format_region_stats,
        region_stats,
        stats_table,
    )
    from dispatch.regions import RegionLevel
    from dispatch.settlement_export import write_csv, write_xlsx

    try:
        since, until = default_period(datetime.now(UTC))
        since, until = _utc(args.since) or since, _utc(args.until) or until
        area = area_of(args.region) if args.region else None
        level = RegionLevel(args.level or (area.level.value if area else "province"))
    except ValueError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    try:
        stats = asyncio.run(_in_session(_settings(args).database.url,
                                        lambda s: region_stats(s, level, area, since, until)))
    except ValueError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    if args.format == "table":
        print(format_region_stats(stats))
        return 0
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    where = area.code if area else "all"
    path = folder / f"stats-{level.value}-{where}-{since:%Y%m%d}-{until:%Y%m%d}.{args.format}"
    if args.format == "csv":
        write_csv(path, COLUMNS, stats_table(stats))
    else:
        write_xlsx(path, [("stats", COLUMNS, stats_table(stats))])
    print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    reports = {"alarms": cmd_report_alarms, "vendors": cmd_report_vendors,
               "audit": cmd_report_audit, "care": cmd_report_care,
               "settlement": cmd_report_settlement, "stats": cmd_report_stats}
    return reports[args.subject](args)


def _read_password() -> str:
    """The new password: typed twice at a terminal, else the first line of stdin."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_user(args: argparse.Namespace) -> int:
    return cmd_user_disable(args) if args.action == "disable" else cmd_user_add(args)


def cmd_user_disable(args: argparse.Namespace) -> int:
    from dispatch.account_store import disable_account

    done = asyncio.run(_in_session(_settings(args).database.url, lambda s: disable_account(
        s, args.name, datetime.now(UTC))))
    if not done:
        print(f"hotline: no enabled account {args.name!r}", file=sys.stderr)
        return 1
    print(f"account {args.name} disabled")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from dispatch.account_store import AccountError, add_account
    from dispatch.passwords import PasswordError
    from dispatch.regions import RegionScope

    if args.role is None or args.region is None:
        print("hotline: user add needs --role and --region", file=sys.stderr)
        return 2
    try:
        scope = RegionScope.parse(args.region)
        password = _read_password()
        account = asyncio.run(_in_session(_settings(args).database.url, lambda s: add_account(
            s, args.name, args.role, scope, password, datetime.now(UTC), seat=args.seat)))
    except (AccountError, PasswordError, ValueError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    print(f"account {account.name} ({account.role.value}, {account.scope}) created")
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from dispatch.db import upgrade
    from ivr.console.server import serve

    settings = _settings(args)
    _configure_logging(settings.log_level, settings.log_format)
    upgrade(settings.database.url)
    with contextlib.suppress(KeyboardInterrupt):
        serve(settings, args.host, args.port)
    return 0


def cmd_alarm_close(args: argparse.Namespace) -> int:
    from dispatch.dispositions import DispositionError, close_alarm

    try:
        asyncio.run(_in_session(_settings(args).database.url, lambda s: close_alarm(
            s, args.order_no, args.disposition, args.by, datetime.now(UTC))))
    except DispositionError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 1
    print(f"order {args.order_no} closed as {args.disposition} by {args.by}")
    return 0


def cmd_worklist(args: argparse.Namespace) -> int:
    from dispatch.worklist import format_worklist, worklist

    settings = _settings(args)
    now, window_s = datetime.now(UTC), args.hours * 3600.0
    items = asyncio.run(_in_session(settings.database.url, lambda s: worklist(
        s, now, settings.emergency.stale_call_s, window_s)))
    print(format_worklist(items, now, window_s))
    return 0


def cmd_recordings(args: argparse.Namespace) -> int:
    """prune: the retention pass, its report printed; release TOKEN: a held recording may
    now expire."""
    from dispatch.retention import prune, release

    settings = _settings(args)
    now = datetime.now(UTC)
    if args.action == "release":
        if not args.token:
            print("hotline: recordings release needs the recording's token", file=sys.stderr)
            return 2
        done = asyncio.run(_in_session(settings.database.url,
                                       lambda s: release(s, args.token, now)))
        print(f"recording {args.token} released" if done
              else f"no held recording {args.token[:40]!r}")
        return 0 if done else 1
    report = asyncio.run(_in_session(settings.database.url, lambda s: prune(
        s, settings.recordings.dir, now, settings.recordings.retention_days)))
    print("\n".join(report.lines()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """One incremental batch for the province; prints its watermark (the next --since)."""
    from dispatch.export import ExportError, ExportIdentity, export_batch, parse_watermark

    settings = _settings(args)
    try:
        export = ExportIdentity(args.source or settings.export.source,
                                settings.export.pseudonym_key.encode("utf-8"),
                                settings.export.personal_data)
        since = parse_watermark(args.since)
        until = parse_watermark(args.until) or datetime.now(UTC) - timedelta(
            seconds=settings.export.lag_s)
        batch = asyncio.run(_in_session(settings.database.url, lambda s: export_batch(
            s, Path(args.out), export, since, until)))
    except ExportError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    if batch is None:
        print(f"nothing new since {args.since or 'the beginning'}; until {until.isoformat()}")
        return 0
    counts = ", ".join(f"{n} {name.removesuffix('.jsonl')}" for name, n in batch.records.items())
    print(f"batch {batch.folder.name}: {counts}")
    print(f"until {until.isoformat()}")
    return 0


def cmd_import_upstream(args: argparse.Namespace) -> int:
    """Merge county batches into this (the province's) database; print the roll-up."""
    from dispatch.upstream import BatchError, format_rollup, import_upstream, province_rollup

    settings = _settings(args)

    async def run(session: Any) -> str:
        report = await import_upstream(session, Path(args.folder))
        return (f"imported {len(report.imported)} batch(es), {report.records} records; "
                f"{len(report.skipped)} already imported\n"
                + format_rollup(await province_rollup(session)))

    try:
        print(asyncio.run(_in_session(settings.database.url, run)))
    except (BatchError, OSError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_bridge(args: argparse.Namespace) -> int:
    from ivr.bridging import BridgeError, bridge_once

    settings = _settings(args)
    if not settings.ami.enabled:
        print("hotline: bridging needs AMI (ami.enabled)", file=sys.stderr)
        return 2
    try:
        outcome = asyncio.run(bridge_once(settings, args.call, args.to))
    except BridgeError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(dataclasses.asdict(outcome), ensure_ascii=False))
    return 0 if outcome.outcome == "answered" else 1


def cmd_call(args: argparse.Namespace) -> int:
    """Click-to-call: ring ``--seat``, then the elder's number; 0 once the seat answered."""
    import getpass

    from dispatch.audit import Actor
    from ivr.click_to_call import CallBackError, call_back_once

    settings = _settings(args)
    if not settings.ami.enabled:
        print("hotline: calling back needs AMI (ami.enabled)", file=sys.stderr)
        return 2
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment
        user = "unknown"
    actor = Actor(None, f"cli:{user}", None)
    try:
        placed = asyncio.run(call_back_once(settings, actor, args.seat, args.number, args.order))
    except CallBackError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(dataclasses.asdict(placed), ensure_ascii=False))
    return 0 if placed.outcome == "rung" else 1


def cmd_check_pbx(args: argparse.Namespace) -> int:
    """The engine's PBX check, printed for an operator: 0 all well, 1 a failure."""
    settings = _settings(args)
    lines, ok = asyncio.run(_check_pbx(settings))
    print("\n".join(lines))
    return 0 if ok else 1


async def _check_pbx(settings: Settings) -> tuple[list[str], bool]:
    """Every configured box in turn: ``[ami]``, then each of ``[[pbxs]]``."""
    lines: list[str] = []
    ok = True
    for box in [settings.ami, *settings.pbxs]:
        box_lines, box_ok = await _check_one_pbx(box)
        lines += box_lines
        ok = ok and box_ok
    return lines, ok


async def _check_one_pbx(box: AmiSettings) -> tuple[list[str], bool]:
    from ivr.ami.client import AmiClient
    from ivr.ami.errors import AmiError
    from ivr.pbx_check import check_pbx

    ami = AmiClient(box)
    where = f"AMI {box.name} {box.host}:{box.port}"
    try:
        try:
            await ami.start()
            await ami.wait_connected(box.ping_timeout_s)
        except AmiError as exc:
            return [f"FAIL  {where}: {exc}"], False
        report = await check_pbx(ami)
        return [f"ok    {where} as {box.username}", *report.lines()], report.ok
    finally:
        await ami.close()


DEMO_CONSOLE_PORT = 8349


def cmd_demo(args: argparse.Namespace) -> int:
    from ivr.demo.runner import run_demo

    _configure_logging("WARNING")
    console_port = (args.console_port if args.console_port is not None else DEMO_CONSOLE_PORT) \
        if args.console else None
    return asyncio.run(run_demo(calls=args.calls, speed=args.speed, seed=args.seed,
                                elders=args.elders, vendors=args.vendors,
                                console_port=console_port))


def _configure_logging(level: str, log_format: str = "text") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLines())
    install_masking_filter()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description="12349 home-care hotline engine")
    parser.add_argument("--config", help="TOML configuration file (default: $HOTLINE_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    Command = Callable[[argparse.Namespace], int]

    def add(name: str, func: Command, text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(func=func)
        return p

    add("engine", cmd_engine, "run the engine (FastAGI server + AMI client)")
    config = add("config", cmd_config_check, "validate the configuration and print it")
    config.add_argument("action", choices=["check"])
    db = add("db", cmd_db_upgrade, "database schema migrations")
    db.add_argument("action", choices=["upgrade"])
    city = add("city", cmd_city_generate, "generate a synthetic city registry")
    city.add_argument("action", choices=["generate"])
    city.add_argument("--elders", type=int, default=10_000)
    city.add_argument("--vendors", type=int, default=40)
    city.add_argument("--seed", type=int, default=12349)
    registry = add("registry", cmd_registry_import, "import an elder registry CSV")
    registry.add_argument("action", choices=["import"])
    registry.add_argument("csv")
    care = add("care", cmd_care, "caring calls: import CSV (care plans), campaign (a "
               "holiday greeting for a group of elders), plan (write a day's rounds now)")
    care.add_argument("action", choices=["import", "campaign", "plan"])
    care.add_argument("csv", nargs="?", help="import: the care-plan CSV")
    care.add_argument("--festival", help="campaign: spring_festival, lantern, dragon_boat, "
                      "mid_autumn, double_ninth, new_year or national_day")
    care.add_argument("--year", type=int, help="campaign: the year")
    care.add_argument("--county", help="campaign: only this county's elders (code)")
    care.add_argument("--category", help="campaign: only this subsidy category's elders")
    care.add_argument("--message", help="campaign: the greeting's words")
    care.add_argument("--date", help="plan: the day, YYYY-MM-DD (default: today)")
    prompts = add("prompts", cmd_prompts, "build: render the catalogue (or the prompts named) "
                  "to WAV files; import DIR: a site's own recordings in their place; check: "
                  "report prompts missing, in the wrong format or over their budget")
    prompts.add_argument("action", choices=["build", "import", "check"])
    prompts.add_argument("names", nargs="*", help="build: prompt names; import: the folder")
    prompts.add_argument("--language", help="import: the language of files not in a "
                         "language folder (default: the catalogue's default)")
    prompts.add_argument("--dir", help="the prompts folder (default: the installed one)")
    elder = add("elder", cmd_elder_no_menu, "no-menu ID on|off: an elder who cannot use a "
                "keypad menu goes straight to an operator")
    elder.add_argument("action", choices=["no-menu"])
    elder.add_argument("elder_id", type=int)
    elder.add_argument("state", choices=["on", "off"])
    report = add("report", cmd_report, "reports for a period")
    report.add_argument("subject", choices=["alarms", "vendors", "audit", "care", "settlement",
                                            "stats"])
    report.add_argument("--county", help="settlement: the county code")
    report.add_argument("--out", default=".",
                        help="settlement, stats: folder for the CSV and XLSX")
    report.add_argument("--date", help="care: the day, YYYY-MM-DD (default: today, local)")
    report.add_argument("--since", "--from", dest="since", help="ISO date/time, UTC unless "
                        "given (default: 30 days ago; audit: 1 day ago)")
    report.add_argument("--until", "--to", dest="until", help="ISO date/time (default: now)")
    report.add_argument("--level", choices=["county", "city", "province"],
                        help="stats: one row per region of this level (default: the "
                        "region's own level)")
    report.add_argument("--region", help="stats: the area, a six-digit code (620000, "
                        "620100, 620102) or LEVEL:CODE (default: every region)")
    report.add_argument("--format", choices=["table", "csv", "xlsx"], default="table",
                        help="stats: printed, or a file in --out")
    report.add_argument("--month", help="vendors: YYYY-MM in local time (default: last "
                        "month); settlement: the month")
    report.add_argument("--bottom", type=int,
                        help="vendors: how many to name for removal (default: 10 %%, at least 1)")
    report.add_argument("--json", action="store_true", help="vendors: print JSON")
    report.add_argument("--tz", help="vendors: time zone (default: [dispatch] timezone)")
    settle = add("settle", cmd_settle, "close a county's month: freeze it and write the "
                 "vendors' statements and the subsidy report (CSV and XLSX)")
    settle.add_argument("action", choices=["close"])
    settle.add_argument("--month", help="YYYY-MM, a month that has ended")
    settle.add_argument("--county", help="the county code")
    settle.add_argument("--by", help="who closes it (recorded)")
    settle.add_argument("--out", default=".", help="folder for the CSV and XLSX files")
    user = add("user", cmd_user, "add a console account (the password is read from the "
               "terminal, or the first line of stdin, never from the command line), or "
               "disable one")
    user.add_argument("action", choices=["add", "disable"])
    user.add_argument("name")
    user.add_argument("--role", choices=["admin", "supervisor", "operator"],
                      help="add: the account's role")
    user.add_argument("--region",
                      help="add: LEVEL:CODE, e.g. county:110105, city:110100, province:110000")
    user.add_argument("--seat", help="the PJSIP endpoint of the account's softphone")
    console = add("console", cmd_console, "run the operators' web console")
    console.add_argument("--host", help="bind address (default: console.host, 127.0.0.1)")
    console.add_argument("--port", type=int, help="port (default: console.port, 8349)")
    alarm = add("alarm", cmd_alarm_close, "close an emergency order with its disposition")
    alarm.add_argument("action", choices=["close"])
    alarm.add_argument("order_no")
    alarm.add_argument("--as", dest="disposition", required=True,
                       choices=["real_emergency", "accidental", "test", "no_response"])
    alarm.add_argument("--by", required=True, help="the operator closing it")
    export = add("export", cmd_export, "write the next incremental batch for the province "
                 "(JSON Lines, docs/export/) and print its watermark")
    export.add_argument("--since", help="the watermark the previous export printed")
    export.add_argument("--until", help="end of the batch (default: now less [export] lag_s)")
    export.add_argument("--out", required=True, help="folder the batch folder goes into")
    export.add_argument("--source", help="this platform's region code ([export] source)")
    upstream = add("import-upstream", cmd_import_upstream, "the province: merge the batches "
                   "in FOLDER (of several platforms) and print the roll-up")
    upstream.add_argument("folder")
    recordings = add("recordings", cmd_recordings, "prune: delete expired recordings (not "
                     "those held: emergencies, upheld complaints) and report files and index "
                     "entries without each other; release TOKEN: let a held one expire")
    recordings.add_argument("action", choices=["prune", "release"])
    recordings.add_argument("token", nargs="?", default="")
    worklist = add("worklist", cmd_worklist, "what operators take first: open emergencies "
                   "nobody has answered, then those awaiting a disposition, then call-backs")
    worklist.add_argument("--hours", type=float, default=24.0,
                          help="call-backs from this many hours back (default 24)")
    bridge = add("bridge", cmd_bridge,
                 "join 120/110/119 or a family member into an elder's call with an operator")
    bridge.add_argument("call", help="the order number, or the call's uniqueid")
    bridge.add_argument("--to", required=True, help="120, 110, 119 or family:<n> (call order)")
    call = add("call", cmd_call, "call an elder back: ring the operator's seat, then the "
               "number (through the seats' dial check)")
    call.add_argument("number", help="the elder's number: digits, an optional leading +")
    call.add_argument("--seat", required=True, help="the operator's PJSIP endpoint, e.g. op1001")
    call.add_argument("--order", help="the order whose timeline records the call")
    add("check-pbx", cmd_check_pbx, "check the PBX over AMI: the actions the engine sends are "
        "permitted, its contexts and queues exist (exit 1 on a failure)")
    demo = add("demo", cmd_demo, "play a day of calls through the engine and the simulator")
    demo.add_argument("--calls", type=int, default=300)
    demo.add_argument("--speed", type=float, default=25.0)
    demo.add_argument("--seed", type=int, default=12349)
    demo.add_argument("--elders", type=int, default=10_000)
    demo.add_argument("--vendors", type=int, default=40)
    demo.add_argument("--console", action="store_true",
                      help="run the console on 127.0.0.1 beside the demo, with a demo "
                           "supervisor account whose one-time password is printed")
    demo.add_argument("--console-port", type=int, default=None,
                      help="the console's port with --console (default: 8349)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
