"""The demo's orders after the call: vendors offered them by phone, workers reporting arrival
and completion on the service line, elders rating the service when called back.

Vendors, workers and elders are simulated parties with seeded odds; the engine does everything
else as in production, on its clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.demo_state import accepted_orders, dispatch_in_hand, events_raised, vendor_lines
from dispatch.phones import national
from dispatch.quality import callback_number
from ivr.context import EngineContext
from ivr.demo.simproc import SimulatorProcess

log = logging.getLogger(__name__)

DAY_STARTS = time(9, 0)  # the demo's clock starts at this local time: callbacks are allowed
SERVICE_LINE = "96349"
POLL_S = 0.5
VENDOR_PHONE = {"mix": [
    {"weight": 70, "answer": "answer", "ring_s": 4.0, "script": [{"press": "1", "delay": 6.0}]},
    {"weight": 6, "answer": "answer", "ring_s": 18.0, "script": [{"press": "1", "delay": 6.0}]},
    {"weight": 8, "answer": "answer", "ring_s": 4.0, "script": [{"press": "2", "delay": 6.0}]},
    {"weight": 6, "answer": "busy"},
    {"weight": 6, "answer": "noanswer"},
    {"weight": 4, "answer": "answer", "ring_s": 4.0, "script": [{"hangup": True, "delay": 3.0}]},
]}
RATINGS = (("5", 45), ("4", 30), ("3", 12), ("2", 6), ("1", 4))
ELDER_MISSES_CALLBACK = 0.12
NO_SHOW = 0.03  # the worker never reports arrival: a late-arrival alert
NO_COMPLETION = 0.04  # arrives, never reports completion: an unconfirmed-completion alert
LATE = 0.1


def demo_clock_origin(tz: ZoneInfo, now: datetime) -> float:
    """Today's (or tomorrow's) start of the working day, local time, as epoch seconds."""
    local = now.astimezone(tz)
    start = local.replace(hour=DAY_STARTS.hour, minute=DAY_STARTS.minute, second=0,
                          microsecond=0)
    if local.hour >= 17:
        start += timedelta(days=1)
    return start.timestamp()


@dataclass
class Visit:
    """What the worker of one accepted order will do, drawn with the order's own odds."""

    arrive_after_s: float | None
    service_s: float | None
    rating: str | None  # the key the elder presses; None = does not answer


@dataclass
class Lifecycle:
    ctx: EngineContext
    sim: SimulatorProcess
    seed: int
    visits: dict[int, Visit] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def prepare(self) -> int:
        """Give every vendor's dispatch line its odds in the simulator; how many lines."""
        async with self.ctx.sessions() as session:
            lines = await vendor_lines(session)
        await self.sim.request("phones", phones={national(n): VENDOR_PHONE for n in lines},
                               seed=self.seed)
        return len(lines)

    async def follow(self, stop: asyncio.Event) -> None:
        """Send a worker to each order as it is accepted, until ``stop``."""
        while not stop.is_set():
            try:
                await self._new_acceptances()
            except Exception:  # the demo reports what happened; one bad poll is not fatal
                log.exception("demo lifecycle poll failed")
            await asyncio.sleep(POLL_S)

    async def _new_acceptances(self) -> None:
        async with self.ctx.sessions() as session:
            rows = await accepted_orders(session)
        for order_id, order_no, elder_id, worker in rows:
            if order_id in self.visits:
                continue
            visit = self._draw(order_id)
            self.visits[order_id] = visit
            self.tasks.append(asyncio.create_task(
                self._visit(order_no, elder_id, national(worker), visit)))

    def _draw(self, order_id: int) -> Visit:
        rng = random.Random(self.seed * 1_000_003 + order_id)
        if rng.random() < NO_SHOW:
            return Visit(None, None, None)
        late = rng.random() < LATE
        arrive = rng.uniform(31, 45) * 60 if late else rng.uniform(5, 28) * 60
        service = None if rng.random() < NO_COMPLETION else rng.uniform(10, 25) * 60
        keys, weights = zip(*RATINGS, strict=True)
        rating = None if rng.random() < ELDER_MISSES_CALLBACK else rng.choices(keys, weights)[0]
        return Visit(arrive, service, rating)

    async def _visit(self, order_no: str, elder_id: int, worker: str, visit: Visit) -> None:
        if visit.arrive_after_s is None:
            return
        await self._report(worker, order_no, "1", visit.arrive_after_s)
        if visit.service_s is None:
            return
        async with self.ctx.sessions() as session:
            number = await callback_number(session, elder_id)
        if number is not None:
            behaviour = ({"answer": "noanswer"} if visit.rating is None else
                         {"answer": "answer", "ring_s": 5.0,
                          "script": [{"press": visit.rating, "delay": 4.0}]})
            await self.sim.request("phones", phones={national(number): behaviour})
        await self._report(worker, order_no, "2", visit.service_s)

    async def _report(self, worker: str, order_no: str, key: str, after_s: float) -> None:
        caller = {"number": worker, "name": "", "to": SERVICE_LINE, "context": "from-pstn",
                  "script": [{"press": f"{order_no}#", "delay": 3.0, "gap": 0.3},
                             {"press": key, "delay": 1.5}]}
        await self.sim.request("call", caller=caller, delay=after_s, timeout=None)

    async def settled(self) -> bool:
        """True when every order is accepted or escalated, every worker has called, and no
        outbound call is still scheduled or under way (callbacks included)."""
        if any(not task.done() for task in self.tasks):
            return False
        async with self.ctx.sessions() as session:
            in_hand = await dispatch_in_hand(session, self.visits)
            alerts_due = await self._alerts_outstanding(session)
        return not (in_hand or alerts_due)

    async def _alerts_outstanding(self, session: AsyncSession) -> int:
        """Orders whose worker never reports, still waiting for their alert."""
        awaited = {(order_id, "late_arrival" if visit.arrive_after_s is None
                    else "completion_unconfirmed")
                   for order_id, visit in self.visits.items()
                   if visit.arrive_after_s is None or visit.service_s is None}
        if not awaited:
            return 0
        raised = await events_raised(session, {order_id for order_id, _ in awaited},
                                     {kind for _, kind in awaited})
        return len(awaited - raised)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
