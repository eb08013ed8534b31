"""The inbound 12349 call as a classic AGI script on pyst2: one process per call.

This is the comparison point of ``make bench``: the same commands, the same registry lookup
and the same committed order as the engine's FastAGI flow, but started by Asterisk (here: the
simulator) as a child process per call, the way agi-bin scripts run.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

from asterisk.agi import AGI

from dispatch.db import async_sessionmaker_for, make_async_engine
from dispatch.orders import ServiceType, create_order
from dispatch.registry import identify

SERVICES = {"1": ServiceType.MEAL, "2": ServiceType.HOUSEKEEPING, "3": ServiceType.HEALTH}
PREFIX = "hotline/zh"


async def _order_for(callerid: str, uniqueid: str, key: str) -> str | None:
    engine = make_async_engine(os.environ["HOTLINE_DATABASE__URL"], pool_size=1)
    try:
        async with async_sessionmaker_for(engine)() as session:
            identity = await identify(session, callerid, "931")
            if identity.elder_id is None or key not in SERVICES:
                return None
            order = await create_order(
                session, elder_id=identity.elder_id, service=SERVICES[key], source="phone",
                call_uniqueid=uniqueid, requested_by="elder", at=datetime.now(UTC),
            )
            return order.order_no
    finally:
        await engine.dispose()


def main() -> int:
    agi = AGI()
    agi.answer()
    agi.get_variable("CHANNEL(linkedid)")
    key = agi.stream_file(f"{PREFIX}/welcome", "0123") or agi.get_data(
        f"{PREFIX}/menu_main", 8000, 1
    )
    agi.get_data(f"{PREFIX}/confirm_{SERVICES.get(key, ServiceType.MEAL).value}", 8000, 1)
    order_no = asyncio.run(_order_for(agi.env["agi_callerid"], agi.env["agi_uniqueid"], key))
    if order_no is None:
        agi.set_variable("HOTLINE_ROUTE", "operator")
        return 0
    agi.set_variable("HOTLINE_ORDER_NO", order_no)
    agi.set_variable("HOTLINE_ROUTE", "done")
    agi.stream_file(f"{PREFIX}/order_number_is")
    for digit in order_no:
        agi.stream_file(f"{PREFIX}/digit_{digit}")
    agi.stream_file(f"{PREFIX}/order_goodbye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
