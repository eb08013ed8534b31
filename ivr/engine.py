"""The engine process: storage, Redis, prompts, the FastAGI server and the AMI link, wired."""

from __future__ import annotations

import asyncio
import collections
import errno
import gc
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatch.console_events import PbxCheck
from dispatch.db import async_sessionmaker_for, make_async_engine, upgrade
from ivr.acks import Acknowledgements
from ivr.adopted_calls import AdoptedCalls
from ivr.agi.server import FastAgiServer
from ivr.alarm_service import scan_forever
from ivr.ami.link import AmiLink
from ivr.ami.pbx_links import Pbx, PbxLinks
from ivr.ami.shared_events import SharedPbxEvents
from ivr.claims import Leases
from ivr.clock import Clock, ScaledClock
from ivr.config import Settings
from ivr.context import EngineContext
from ivr.dialplan_contract import AgiScript
from ivr.dispatcher import Dispatcher
from ivr.emergency_watch import EmergencyWatch
from ivr.escalation import FamilyEscalation
from ivr.fdlimit import RateLimitedLog, raise_open_file_limit
from ivr.flows.care_call import CareCallFlow
from ivr.flows.family_alert import FamilyAlertFlow
from ivr.flows.inbound import InboundFlow
from ivr.flows.leave_message import LeaveMessageFlow
from ivr.flows.quality_callback import QualityCallbackFlow
from ivr.flows.seat_dial import SeatDialFlow
from ivr.flows.service_report import ServiceReportFlow
from ivr.flows.vendor_offer import VendorOfferFlow
from ivr.live import LiveState
from ivr.metrics_service import MetricsServer
from ivr.outbox_relay import OutboxRelay
from ivr.pop_delivery import WatchedRegions
from ivr.prompts import PromptCatalogue
from ivr.queue_log_recovery import QueueLogRecovery
from ivr.queue_members import QueueMembers, queue_listing
from ivr.queue_tracker import QueueTracker
from ivr.recording_index import RecordingIndex
from ivr.redis_link import RedisLink, open_redis
from ivr.retention_service import prune_forever
from ivr.speech.service import SpeechService
from ivr.spool_service import replay_forever
from ivr.trunk import PriorityLines

if TYPE_CHECKING:
    from ivr.ami.client import AmiClient

log = logging.getLogger(__name__)


class Engine:
    """One engine process. Holds no call state another process would need."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or ScaledClock(settings.clock.speed)
        self.agi: FastAgiServer | None = None
        self.ami: PbxLinks | None = None  # one AMI link per Asterisk box, routed by trunk
        self.ami_clients: list[AmiClient] = []
        self.escalation: FamilyEscalation | None = None
        self.emergency_watch: EmergencyWatch | None = None
        self.adopted_calls: AdoptedCalls | None = None
        self.queue_log: QueueLogRecovery | None = None
        self.dispatcher: Dispatcher | None = None
        self.redis: RedisLink | None = None
        self.context: EngineContext | None = None
        self.speech: SpeechService | None = None
        self.pbx_reports: dict[str, Any] = {}  # box name -> its last ivr.pbx_check.PbxReport
        self.outbox: OutboxRelay | None = None
        self.queue_members: QueueMembers | None = None
        self.shared_events: SharedPbxEvents | None = None  # run here while this engine leads
        self.metrics: MetricsServer | None = None
        self._db_engine: Any = None
        self._background: list[asyncio.Task[None]] = []

    async def start(self, *, migrate: bool = True, connect_ami: bool = True) -> None:
        settings = self.settings
        if migrate:
            await asyncio.to_thread(upgrade, settings.database.url)
        self._db_engine = make_async_engine(settings.database.url, settings.database.pool_size)
        self.redis = await asyncio.to_thread(open_redis, settings.redis)
        live = LiveState(self.redis.client, settings.redis.key_prefix,
                         settings.redis.event_stream_maxlen)
        prompts = PromptCatalogue.load(
            default_language=settings.ivr.default_language, prefix=settings.ivr.prompt_prefix
        )
        self.context = EngineContext(
            settings=settings,
            session_maker=async_sessionmaker_for(self._db_engine),
            live=live,
            prompts=prompts,
            clock=self.clock,
            acks=Acknowledgements(self.redis.client, settings.redis.key_prefix),
        )
        self.context.acks.start()
        self.context.screens = WatchedRegions(self.redis.client, settings.redis.key_prefix,
                                              self.context.acks)
        self.context.priority_lines = PriorityLines(self.redis.background,
                                                    settings.redis.key_prefix,
                                                    self.context.hangups)
        self.outbox = OutboxRelay(self.context)
        self.outbox.attach()  # every event for the consoles is committed before it is sent
        self.speech = await SpeechService.start(settings.speech, prompts,
                                                settings.ivr.default_language)
        if settings.dispatch.enabled:
            self.dispatcher = Dispatcher(self.context, None, self.redis.background)
            self.context.dispatcher = self.dispatcher
        routes = {script.value: make(self) for script, make in FLOW_SCRIPTS.items()}
        self.agi = FastAgiServer(routes, settings.agi)
        await self.agi.start()
        self._background = [asyncio.create_task(self.context.handsets.refresh_forever(
                                self.context)),
                            asyncio.create_task(replay_forever(self.context)),
                            asyncio.create_task(scan_forever(self.context)),
                            asyncio.create_task(prune_forever(self.context)),
                            asyncio.create_task(self.outbox.relay_forever()),
                            asyncio.create_task(self.context.screens.refresh_forever())]
        if settings.metrics.enabled:
            self.metrics = MetricsServer(self.context, settings.metrics)
            await self.metrics.start()
        if connect_ami and settings.ami.enabled:
            await self.start_ami()

    async def start_ami(self) -> None:
        """Connect to Asterisk's AMI; calls are served over FastAGI whether or not it is up."""
        from ivr.ami.client import AmiClient
        from ivr.ami_events import subscribe_engine_events

        assert self.context is not None
        assert self.redis is not None
        self.queue_members = QueueMembers(self.redis.background, self.settings.redis.key_prefix)
        boxes = [self.settings.ami, *self.settings.pbxs]
        self.ami_clients = [AmiClient(box, on_connect=self._on_ami_connect) for box in boxes]
        self.ami = PbxLinks([Pbx(box.name, frozenset(box.endpoints), client)
                             for box, client in zip(boxes, self.ami_clients, strict=True)])
        leases = Leases(self.redis.background, self.settings.redis.key_prefix)
        # the same work whichever engine does it: one engine a PBX does it for all
        self.shared_events = SharedPbxEvents(
            [(box.name, box.link) for box in self.ami.boxes], leases)
        subscribe_engine_events(self.shared_events, self.context.live)
        QueueTracker(self.context).subscribe(self.shared_events)
        RecordingIndex(self.context).subscribe(self.shared_events)
        self.context.hangups.subscribe(self.ami)  # answered calls' lines free at hangup
        self.queue_members.subscribe(self.ami)
        self.escalation = FamilyEscalation(self.context, self.ami, leases)
        self.context.on_emergency = self.escalation.start
        # handset calls the dialplan queued without any engine: their order and screen pop
        self.adopted_calls = AdoptedCalls(self.context, leases)
        self.adopted_calls.subscribe(self.ami)
        if self.dispatcher is not None:
            self.dispatcher.attach_ami(self.ami)
        if self.settings.ami.queue_log:  # waits whose events an AMI outage hid
            first = self.ami_clients[0]
            self.queue_log = QueueLogRecovery(Path(self.settings.ami.queue_log),
                                              self.context.patient_writes.add,
                                              lambda: first.connected)
            self._background.append(asyncio.create_task(self.queue_log.sample_forever(),
                                                        name="queue log samples"))
        self._background.append(asyncio.create_task(self.shared_events.hold_forever(),
                                                    name="AMI event leases"))
        for client in self.ami_clients:  # wired before the first connection's sweep
            await client.start()
        # escalations cut off by a crash or restart continue (once, whichever engine runs them)
        self._background.append(asyncio.create_task(self.escalation.resume_forever()))
        # emergencies nobody answered: re-alerted, and the elder called back into the queue
        self.emergency_watch = EmergencyWatch(self.context, self.ami, leases)
        self._background.append(asyncio.create_task(self.emergency_watch.watch_forever()))

    async def _on_ami_connect(self, ami: AmiLink) -> None:
        if self.shared_events is not None:  # lead at once if no other engine does
            await self.shared_events.hold()
        await self._check_pbx(ami)
        if self.ami is not None and self.context is not None:  # lines of calls ended unseen
            await self.context.hangups.settle_missed([box.link for box in self.ami.boxes])
        # the operators' queue is on the first box; the others carry trunks
        if self.ami is None or ami is not self.ami.first.link:
            return
        if self.queue_log is not None:
            await self.queue_log.recover()
        listing = await queue_listing(ami)
        if listing is None:
            return
        if self.queue_members is not None:
            await self.queue_members.refresh(listing)
        if self.adopted_calls is not None:  # callers queued while no engine listened
            self.adopted_calls.sweep(ami, listing)

    async def _check_pbx(self, ami: AmiLink) -> None:
        """On every AMI (re)connection: is the PBX what the engine needs? A failure is logged,
        kept in ``pbx_reports`` (``pbx_ok``) and published as a ``pbx_check`` event; the
        engine goes on with what still works."""
        from ivr.pbx_check import check_pbx, log_report

        name = next((box.name for box in self.ami.boxes if box.link is ami), "pbx") \
            if self.ami is not None else "pbx"
        report = await check_pbx(ami)
        self.pbx_reports[name] = report
        log_report(report, name)
        if self.context is not None:
            await self.context.live.publish(PbxCheck(
                ok=report.ok, problems=[f"{name}: {problem}"
                                        for problem in (*report.problems, *report.unanswered)]))

    @property
    def pbx_report(self) -> Any:
        """The first box's last PBX check; None before its first AMI connection."""
        first = self.ami.first.name if self.ami is not None else None
        return self.pbx_reports.get(first) if first is not None else None

    @property
    def pbx_ok(self) -> bool | None:
        """Every box's last check passed; None before every box has been checked once."""
        boxes = self.ami.boxes if self.ami is not None else []
        if not boxes or any(box.name not in self.pbx_reports for box in boxes):
            return None
        return all(self.pbx_reports[box.name].ok for box in boxes)

    @property
    def agi_port(self) -> int:
        assert self.agi is not None
        return self.agi.port

    async def stop(self, grace_s: float = 0.0) -> None:
        """Finish calls within ``grace_s``, stop every service; Redis (an embedded server
        process included) and the database pool are released whatever failed before. Each
        step is bounded: a shutdown never hangs on one service, it logs which one overran."""
        steps: list[tuple[str, Any]] = []
        if self.agi is not None:
            steps.append(("FastAGI server", lambda: self.agi.close(grace_s)))
        if self.context is not None:  # after the calls: what they did not store is spooled
            steps.append(("emergency orders", self.context.emergency_orders.close))
        steps.append(("background tasks", self._stop_background))
        if self.outbox is not None:
            steps.append(("outbox writes", self.outbox.close))
            steps.append(("outbox marks", self.outbox.mark_sent))
        if self.context is not None:
            steps.append(("acknowledgements", self.context.acks.close))
            steps.append(("releases at hangup", self.context.hangups.close))
        links = [(f"AMI link {box.name}", client) for box, client in
                 zip(self.ami.boxes if self.ami else [], self.ami_clients, strict=False)]
        for name, service in (("metrics", self.metrics), ("speech", self.speech),
                              ("family escalation", self.escalation),
                              ("emergency watch", self.emergency_watch),
                              ("adopted calls", self.adopted_calls),
                              ("dispatcher", self.dispatcher),
                              ("shared AMI events", self.shared_events), *links,
                              ("queue members", self.queue_members), ("Redis", self.redis)):
            if service is not None:
                steps.append((name, service.close))
        if self.context is not None:  # the calls and the AMI events have ended
            steps.append(("patient writes", self.context.patient_writes.close))
        if self.context is not None:  # its waiters (escalations, the dispatcher) have ended
            steps.append(("trunk count", self.context.trunk_count.close))
            if self.context.priority_lines is not None:
                steps.append(("trunk turns", self.context.priority_lines.close))
        if self._db_engine is not None:
            steps.append(("database pool", self._db_engine.dispose))
        for name, step in steps:
            bound = grace_s + STOP_STEP_TIMEOUT_S + STOP_STEP_EXTRA_S.get(name, 0.0)
            await _bounded_step(name, step, bound)

    async def _stop_background(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)


async def _bounded_step(name: str, step: Callable[[], Awaitable[Any]], bound: float) -> None:
    """Run one stop step for at most ``bound`` seconds. One that overruns is logged with
    where every task stands, its own included, before it is cancelled."""
    task = asyncio.ensure_future(step())
    try:
        await asyncio.wait({task}, timeout=bound)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not task.done():
        log.error("shutdown: %s did not stop within %.0f s; going on (the step: %s; others: %s)",
                  name, bound, _task_place(task), _still_running(besides=task))
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_STEP_CANCEL_S)
        return
    if not task.cancelled() and task.exception() is not None:
        log.error("shutdown: stopping %s failed; going on", name, exc_info=task.exception())


_OWN_CODE = str(Path(__file__).resolve().parents[1])


def _still_running(most: int = 6, besides: asyncio.Task[Any] | None = None) -> str:
    """Where the tasks still running stand: the coroutine each task was started with, the
    deepest frame of this project's code and the frame it waits in, and how many share
    that; what a step that overran its stop was waiting for."""
    places: collections.Counter[str] = collections.Counter()
    for task in asyncio.all_tasks():
        if task is asyncio.current_task() or task is besides:
            continue
        places[_task_place(task)] += 1
    return "; ".join(f"{n} at {place}" for place, n in places.most_common(most)) or "none"


def _task_place(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    started = getattr(getattr(coro, "cr_code", None), "co_qualname", task.get_name())
    frames = _await_chain(coro)
    own = [frame for frame in frames if _is_own(frame.f_code.co_filename)]
    shown = [f for f in (own[-1] if own else None, frames[-1] if frames else None) if f]
    return " > ".join([started, *dict.fromkeys(
        f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno} {f.f_code.co_name}"
        for f in shown)])


def _is_own(filename: str) -> bool:
    return filename.startswith(_OWN_CODE) and "site-packages" not in filename


def _await_chain(awaitable: Any) -> list[Any]:
    """The frames down a coroutine's chain of awaits, outermost first."""
    frames = []
    while awaitable is not None:
        here = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if here is not None:
            frames.append(here)
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom",
                                                                    None)
    return frames


# The flow behind each FastAGI script the dialplan asks for (ivr/dialplan_contract.py).
FLOW_SCRIPTS: dict[AgiScript, Callable[[Engine], Any]] = {
    AgiScript.INBOUND: lambda engine: InboundFlow(engine.context, engine.speech),
    AgiScript.FAMILY_ALERT: lambda engine: FamilyAlertFlow(engine.context),
    AgiScript.VENDOR_OFFER: lambda engine: VendorOfferFlow(engine.context),
    AgiScript.QUALITY_CALLBACK: lambda engine: QualityCallbackFlow(engine.context),
    AgiScript.SERVICE_REPORT: lambda engine: ServiceReportFlow(engine.context),
    AgiScript.SEAT_DIAL: lambda engine: SeatDialFlow(engine.context),
    AgiScript.CARE_CALL: lambda engine: CareCallFlow(engine.context),
    AgiScript.MESSAGE: lambda engine: LeaveMessageFlow(engine.context),
}


def quiet_resource_errors(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """The loop's error handler, but a listener out of descriptors (asyncio retries its
    ``accept()`` every second) is one warning every 10 s instead of a traceback each time."""
    accept_errors = RateLimitedLog(log)

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                                                       errno.ENOMEM):
            accept_errors.warning("%s: %s", context.get("message", "socket error"), exc.strerror)
            return
        loop.default_exception_handler(context)

    return handle


# Collections of the youngest generation after this many new objects, not Python's 700: a
# call makes thousands of short-lived objects that reference counting frees anyway, and the
# collections cost a busy engine CPU for little (README, "Inbound calls, one statement per
# order and a tuned collector").
YOUNG_COLLECTION_OBJECTS = 50_000
OLDER_COLLECTIONS = (20, 100)


def tune_garbage_collector() -> None:
    """Everything made while the engine started lives as long as the process: keep it out of
    the collector's full scans, whose pauses stall every call at once; and collect young
    objects less often. Only for a process that runs one engine (several in turn would never
    free the earlier ones)."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_OBJECTS, *OLDER_COLLECTIONS)


STOP_STEP_TIMEOUT_S = 15.0
STOP_STEP_CANCEL_S = 5.0  # a step that overran gets this long to end once cancelled
# Steps that store data get longer: after a disaster minute the queue events and call records
# still waiting for the database take a while to write, and each one lost is a record gone.
STOP_STEP_EXTRA_S = {"patient writes": 60.0}
SHUTDOWN_GRACE_S = 10.0


async def serve_forever(settings: Settings) -> None:
    """Run the engine until SIGTERM or SIGINT, then shut down cleanly.

    Calls in progress get a grace period to finish; any still running after it are handed to
    the operator queue, the embedded Redis server is stopped, and the database pool closed.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    limit = raise_open_file_limit()
    loop.set_exception_handler(quiet_resource_errors(loop))
    log.info("open-file limit %d", limit)
    engine = Engine(settings)
    await engine.start()
    tune_garbage_collector()
    log.info("engine ready: FastAGI %s:%d", settings.agi.host, engine.agi_port)
    try:
        await stop.wait()
        log.info("shutting down: %.0f s for calls in progress", SHUTDOWN_GRACE_S)
    finally:
        await engine.stop(SHUTDOWN_GRACE_S)
