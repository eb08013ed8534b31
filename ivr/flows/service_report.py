"""FastAGI route ``service_report``: a vendor's worker calls the service number.

The worker is known by the registered phone they call from, keys the order number (ended
by #), then 1 arrived or 2 completed. A completed order gets its quality callback planned.
Keyed instead of an order number, ``*#`` reads the vendor's month so far: the orders
charged and the amount to be settled; then the order number is asked again.
"""

from __future__ import annotations

import logging

from dispatch.console_events import OrderArrived, OrderCompleted
from dispatch.models import CallPurpose
from dispatch.phones import mask, normalize
from dispatch.service_reports import (
    Worker,
    WorkerOrder,
    report_arrived,
    report_completed,
    worker_by_number,
    worker_order,
)
from ivr.agi.errors import AgiHangup
from ivr.agi.session import AgiSession
from ivr.context import EngineContext
from ivr.flows.balances import read_vendor_month
from ivr.flows.outbound_call import ask
from ivr.storage_steps import STORAGE_ERRORS

log = logging.getLogger(__name__)

ARRIVED, COMPLETED = "1", "2"
ORDER_NO_DIGITS = 12
ORDER_TIMEOUT_MS = 15_000
ROUNDS = 3
MONTH_KEY = "*"  # *# at the order number: the vendor's month so far
MAX_MONTH_READS = 3


class ServiceReportFlow:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.language = ctx.settings.ivr.default_language

    def _path(self, name: str) -> str:
        return self.ctx.prompts.path(name, self.language)

    async def __call__(self, agi: AgiSession) -> None:
        try:
            await agi.answer()
            worker = await self._worker(agi)
            if worker is None:
                await agi.stream_file(self._path("worker_unknown"))
                return
            order = await self._order(agi, worker)
            if order is None:
                await agi.stream_file(self._path("goodbye"))
                return
            key = await ask(agi, self.ctx, [self._path("worker_status_keys")],
                            ARRIVED + COMPLETED, ROUNDS)
            if key is None:
                await agi.stream_file(self._path("goodbye"))
                return
            done = await self._report(worker, order, key)
            await agi.stream_file(self._path(done))
        except AgiHangup:
            pass
        except STORAGE_ERRORS as exc:
            log.error("service report from %s not stored: %s", mask(agi.env.callerid), exc)
            if not agi.hungup:
                await agi.stream_file(self._path("system_busy_later"))

    async def _worker(self, agi: AgiSession) -> Worker | None:
        number = normalize(agi.env.callerid, self.ctx.settings.ivr.local_area_code)
        async with self.ctx.sessions(urgent=True) as session:
            worker = await worker_by_number(session, number)
        if worker is None:
            log.warning("service line call from unregistered %s", mask(agi.env.callerid))
        return worker

    async def _order(self, agi: AgiSession, worker: Worker) -> WorkerOrder | None:
        month_reads = 0
        attempt = 0
        while attempt < ROUNDS:
            digits = (await agi.get_data(self._path("worker_enter_order"), ORDER_TIMEOUT_MS,
                                         ORDER_NO_DIGITS)).digits
            if digits == MONTH_KEY and month_reads < MAX_MONTH_READS:
                month_reads += 1
                await read_vendor_month(agi, self.ctx, worker.vendor_id, self.language)
                continue
            attempt += 1
            async with self.ctx.sessions(urgent=True) as session:
                order = await worker_order(session, digits, worker)
            if order is not None:
                return order
            if attempt < ROUNDS:
                await agi.stream_file(self._path("worker_bad_order"))
        return None

    async def _report(self, worker: Worker, order: WorkerOrder, key: str) -> str:
        report = report_arrived if key == ARRIVED else report_completed
        async with self.ctx.writing(urgent=True) as session:
            ok = await report(session, order.id, worker, self.ctx.now())
        if not ok:
            return "worker_state_refused"
        kind = "arrived" if key == ARRIVED else "completed"
        event = OrderArrived if key == ARRIVED else OrderCompleted
        await self.ctx.live.publish(event(order_id=order.id, order_no=order.order_no,
                                          worker_id=worker.id,
                                          place=order.place))
        if key == COMPLETED and self.ctx.dispatcher is not None:
            self.ctx.dispatcher.order_completed(order.id)
            await self.ctx.dispatcher.plan(order.id, CallPurpose.QUALITY_CALLBACK)
        return f"worker_{kind}"
