"""Command line: ``python -m sim serve ...`` (control/AMI servers) and ``python -m sim run ...``
(play a scenario file of calls and write their results)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sim.ami.perms import class_names
from sim.clock import SimClock
from sim.conf import read_sections
from sim.dialplan.parser import DialplanError, load
from sim.logmask import setup_logging
from sim.moh import DataDir
from sim.parties import CallerParty, PartyError
from sim.pbx import Pbx, PbxSettings
from sim.sounds import SoundLibrary

log = logging.getLogger("sim")
ALL_CLASSES = {"system", "call", "log", "verbose", "command", "agent", "user", "config",
               "dtmf", "reporting", "cdr", "dialplan", "originate", "agi", "cc", "aoc",
               "test", "security", "message"}


def _global(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dialplans", action="append", required=True, type=Path,
                        help="extensions.conf file or directory of *.conf (repeatable)")
    common.add_argument("--sounds", type=Path, help="directory of prompts: <sounds>/<lang>/*.wav")
    common.add_argument("--prompt-prefix", default="hotline")
    common.add_argument("--global", dest="globals", action="append", type=_global, default=[],
                        metavar="NAME=VALUE", help="override a [globals] value (repeatable)")
    common.add_argument("--speed", type=_positive, default=1.0,
                        help="simulated seconds per real second")
    common.add_argument("--operators", type=Path, help="JSON list of queue operators")
    common.add_argument("--queues-conf", type=Path,
                        help="queues.conf for each queue's strategy (default: beside the "
                             "first --dialplans file, as Asterisk's config directory)")
    common.add_argument("--musiconhold-conf", type=Path,
                        help="musiconhold.conf for the hold classes and their announcements "
                             "(default: beside the first --dialplans file)")
    common.add_argument("--pjsip-conf", type=Path,
                        help="pjsip.conf for the seats that register (and the modules.conf "
                             "beside it; default: beside the first --dialplans file)")
    common.add_argument("--manager-conf", type=Path,
                        help="manager.conf whose [<ami-user>] read/write classes the AMI user "
                             "gets (default: beside the first --dialplans file; without one "
                             "the user has every class)")
    common.add_argument("--data-dir", type=Path,
                        help="Asterisk's data directory (astdatadir), against which relative "
                             "musiconhold.conf directories resolve; sounds/<prompt-prefix> in "
                             "it is --sounds, where the prompts are installed")
    common.add_argument("--phones", type=Path, help="JSON object of phone behaviours")
    common.add_argument("--agi-dir", type=Path, default=Path("agi_scripts"))
    common.add_argument("--agi-connect-timeout", type=_positive, default=2.0,
                        help="real seconds to connect to a FastAGI server")
    common.add_argument("--agi-idle-timeout", type=_positive, default=60.0,
                        help="real seconds to wait for each engine command before giving up")
    common.add_argument("--record-dir", type=Path, help="where RECORD FILE writes silence")
    common.add_argument("--queue-log", type=Path,
                        help="app_queue's queue log file (Asterisk's queue_log), appended to")
    common.add_argument("--system-name", default="",
                        help="asterisk.conf's systemname: the prefix of every uniqueid")
    common.add_argument("--pjsip-trunks", default="trunk",
                        help="comma-separated PJSIP trunk endpoints (pjsip-trunk.conf); a call "
                             "to PJSIP/<number>@<another> fails as on Asterisk")
    common.add_argument("--log-level", default="WARNING")
    serve = sub.add_parser("serve", parents=[common], help="run until shut down")
    serve.add_argument("--host", default="127.0.0.1", help="bind address for all servers")
    serve.add_argument("--control-port", type=int, default=0)
    serve.add_argument("--ami-port", type=int)
    serve.add_argument("--ami-user", default="hotline")
    serve.add_argument("--ami-secret-env", metavar="VARNAME",
                       help="environment variable holding the AMI secret")
    serve.add_argument("--alarm-spool", type=Path, metavar="DIR",
                       help="AlarmReceiver spool directory the alarm op writes into")
    serve.add_argument("--stop-on-stdin-eof", action="store_true",
                       help="shut down when standard input closes: the process that started "
                            "the simulator with a pipe there has ended, however it ended")
    run = sub.add_parser("run", parents=[common], help="play a scenario and exit")
    run.add_argument("--scenario", type=Path, required=True)
    run.add_argument("--results", type=Path, required=True)
    return parser


def make_pbx(args: argparse.Namespace, reactor: Any) -> Pbx:
    dialplan = load(args.dialplans)
    settings = PbxSettings(
        agi_connect_timeout=args.agi_connect_timeout, agi_idle_timeout=args.agi_idle_timeout,
        agi_dir=args.agi_dir.resolve(),
        record_dir=args.record_dir.resolve() if args.record_dir else None,
        system_name=args.system_name,
        queue_log=args.queue_log.resolve() if args.queue_log else None,
        pjsip_trunks=frozenset(t.strip() for t in args.pjsip_trunks.split(",") if t.strip()),
    )
    pbx = Pbx(reactor, SimClock(reactor, args.speed), dialplan,
              SoundLibrary(args.sounds, args.prompt_prefix), settings, dict(args.globals))
    _load_conf(args, args.queues_conf, "queues.conf", pbx.queues.load_conf)
    mounts = {f"sounds/{args.prompt_prefix}": args.sounds.resolve()} if args.sounds else {}
    pbx.moh.data_dir = DataDir(args.data_dir.resolve() if args.data_dir else None, mounts)
    _load_conf(args, args.musiconhold_conf, "musiconhold.conf", pbx.moh.load_conf)
    _load_conf(args, args.pjsip_conf, "pjsip.conf", pbx.seats.load_conf)
    if args.operators:
        pbx.queues.set_operators(_read_json(args.operators))
    if args.phones:
        pbx.phones.update(_read_json(args.phones))
    return pbx


def _load_conf(args: argparse.Namespace, given: Path | None, name: str,
               load: Callable[[Path], int]) -> None:
    """Load the file given, else ``name`` beside the first --dialplans file (Asterisk's config
    directory) if there is one; an unreadable or invalid file stops the simulator."""
    path = given or args.dialplans[0].parent / name
    if given or (args.dialplans[0].is_file() and path.is_file()):
        try:
            load(path)
        except PartyError as exc:
            raise SystemExit(str(exc)) from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"cannot read {path}: {exc}") from None


def _ami_users(args: argparse.Namespace) -> dict[str, Any]:
    """The AMI user: its secret from the environment (Asterisk reads it from the file the
    shipped manager.conf includes), its read/write classes from manager.conf's section."""
    from sim.ami.event_filters import EventFilters
    from sim.ami.server import AmiUser

    if not args.ami_secret_env:
        raise SystemExit("--ami-port needs --ami-secret-env (there is no default secret)")
    secret = os.environ.get(args.ami_secret_env, "")
    if not secret:
        raise SystemExit(f"environment variable {args.ami_secret_env} is empty or unset")
    path = args.manager_conf or args.dialplans[0].parent / "manager.conf"
    if not args.manager_conf and not (args.dialplans[0].is_file() and path.is_file()):
        return {args.ami_user: AmiUser(secret, read=set(ALL_CLASSES), write=set(ALL_CLASSES))}
    try:
        section = next((section for section in read_sections(path)
                        if section.name.lower() == args.ami_user.lower()
                        and section.name != "general" and not section.template), None)
        if section is None:
            raise SystemExit(f"{path}: no [{args.ami_user}] user section")
        filters = EventFilters.of(_event_filters(path, section.lines))
    except (PartyError, ValueError) as exc:
        raise SystemExit(f"{path}: {exc}") from None
    return {args.ami_user: AmiUser(secret, read=class_names(section.options.get("read", "")),
                                   write=class_names(section.options.get("write", "")),
                                   filters=filters)}


def _event_filters(path: Path, lines: list[tuple[str, str]]) -> list[Any]:
    """The user's eventfilter lines; one manager.c refuses is skipped with a warning."""
    from sim.ami.event_filters import parse_filter

    filters = []
    for key, value in lines:
        if not key.lower().startswith("eventfilter"):
            continue
        try:
            filters.append(parse_filter(key, value))
        except ValueError as exc:
            log.warning("%s: %s = %s skipped: %s", path, key, value, exc)
    return filters


def serve(args: argparse.Namespace) -> int:
    from twisted.internet import reactor

    from sim.control import ControlFactory, ControlService

    pbx = make_pbx(args, reactor)
    service = ControlService(pbx, reactor.stop, args.alarm_spool)
    control = reactor.listenTCP(args.control_port, ControlFactory(service), interface=args.host)
    ami_port = None
    if args.ami_port is not None:
        try:
            from sim.ami import server as ami_server
        except ImportError:
            log.warning("sim.ami.server is not available; AMI disabled")
        else:
            listening = ami_server.listen(pbx, reactor, args.ami_port, _ami_users(args),
                                          interface=args.host)
            ami_port = listening.getHost().port
    ready = {"ready": True, "control_port": control.getHost().port, "ami_port": ami_port,
             "clock": {"speed": pbx.clock.speed, "real_start": pbx.clock.real_start}}
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    if args.stop_on_stdin_eof:
        _stop_at_stdin_eof(reactor)
    reactor.run()
    return 0


def _stop_at_stdin_eof(reactor: Any) -> None:
    """A daemon thread reads standard input to its end, then stops the reactor."""
    import threading

    def watch() -> None:
        while sys.stdin.buffer.read1(4096):
            pass
        log.warning("standard input closed: the simulator's parent has ended; shutting down")
        reactor.callFromThread(lambda: reactor.running and reactor.stop())

    threading.Thread(target=watch, name="stdin watch", daemon=True).start()


def _scenario(data: Any) -> tuple[list[dict], Any, Any]:
    if isinstance(data, list):
        return data, None, None
    if isinstance(data, dict) and isinstance(data.get("calls"), list):
        return data["calls"], data.get("phones"), data.get("operators")
    raise SystemExit("scenario must be a list of calls or an object with a 'calls' list")


def _validated_calls(calls: list[Any]) -> list[tuple[float, dict]]:
    out = []
    for idx, item in enumerate(calls):
        if not isinstance(item, dict):
            raise PartyError(f"call {idx}: must be an object with 'at' and 'caller'")
        at = item.get("at", 0)
        if isinstance(at, bool) or not isinstance(at, (int, float)) or at < 0:
            raise PartyError(f"call {idx}: 'at' must be a non-negative number")
        try:
            CallerParty.from_json(item.get("caller"))
        except PartyError as exc:
            raise PartyError(f"call {idx}: {exc}") from None
        out.append((float(at), item["caller"]))
    return out


def run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor
    from twisted.internet.defer import DeferredList

    pbx = make_pbx(args, reactor)
    calls, phones, operators = _scenario(_read_json(args.scenario))
    planned = _validated_calls(calls)
    if phones is not None:
        pbx.phones.update(phones)
    if operators is not None:
        pbx.queues.set_operators(operators)
    results: list[Any] = [None] * len(planned)
    failures = 0

    def store(result: Any, idx: int) -> None:
        results[idx] = result

    def finished(outcomes: list) -> None:
        nonlocal failures
        for ok, value in outcomes:
            if not ok:
                failures += 1
                log.error("call failed: %s", value.getErrorMessage())
        out = {"calls": results, "stats": pbx.stats_snapshot()}
        args.results.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
        reactor.stop()

    def start() -> None:
        pending = [
            pbx.clock.sleep(at).addCallback(lambda _, c=caller: pbx.call(c))
            .addCallback(store, idx)
            for idx, (at, caller) in enumerate(planned)
        ]
        DeferredList(pending, consumeErrors=True).addCallback(finished)

    reactor.callWhenRunning(start)
    reactor.run()
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        if args.command == "serve":
            return serve(args)
        return run(args)
    except (DialplanError, PartyError) as exc:
        print(f"sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
