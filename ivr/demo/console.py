"""``hotline demo --console``: the console beside the demo's engine, on 127.0.0.1, with a
demo supervisor account whose one-time password is printed, so a newcomer watches the screen
pops, the worklist and the wallboard while the demo calls come in.

The account is created for this run only (the demo's database is new each run) and sees the
whole generated province; its password is random and shown once.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from dispatch.account_store import add_account
from dispatch.accounts import Role
from dispatch.models import Elder
from dispatch.regions import RegionLevel, RegionScope
from ivr.console.server import bind, console_app, uvicorn_server
from ivr.engine import Engine

DEMO_ACCOUNT = "demo-supervisor"
DEMO_SEAT = "supervisor"  # the supervisor's phone in asterisk_conf/pjsip.conf
IDLE_S = 24 * 3600.0  # on the demo's fast clock: a newcomer may watch a while unclicked


@dataclass(frozen=True)
class DemoConsole:
    url: str
    name: str
    password: str

    def banner(self) -> str:
        return (f"Console: {self.url}live (wallboard: {self.url}wallboard)\n"
                f"  sign in as {self.name} with the one-time password {self.password}")


async def _province(engine: Engine) -> RegionScope:
    assert engine.context is not None
    async with engine.context.sessions() as session:
        code = await session.scalar(select(Elder.province_code)
                                    .where(Elder.province_code.is_not(None)).limit(1))
    if not code:
        raise RuntimeError("the demo registry has no province code")
    return RegionScope(RegionLevel.PROVINCE, code)


@contextlib.asynccontextmanager
async def demo_console(engine: Engine, port: int) -> AsyncIterator[DemoConsole]:
    """The console on 127.0.0.1:``port`` (0: any free port) for as long as the block runs."""
    assert engine.context is not None and engine.redis is not None
    settings = engine.settings.model_copy(deep=True)
    settings.console.secret_key = secrets.token_urlsafe(48)
    settings.console.idle_timeout_s = IDLE_S
    password = secrets.token_urlsafe(12)
    async with engine.context.sessions() as session:
        await add_account(session, DEMO_ACCOUNT, Role.SUPERVISOR, await _province(engine),
                          password, datetime.now(UTC), seat=DEMO_SEAT)
    embedded = engine.redis.embedded
    app = console_app(settings, embedded.socket_file if embedded is not None else None,
                      now=engine.context.now)  # the demo's day, as the engine sees it
    sock = bind("127.0.0.1", port)
    server = uvicorn_server(app)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not serving.done():
            await asyncio.sleep(0.05)
        if serving.done():
            serving.result()  # raises why it could not start
        host, bound = sock.getsockname()[:2]
        yield DemoConsole(f"http://{host}:{bound}/", DEMO_ACCOUNT, password)
    finally:
        server.should_exit = True
        await serving
        sock.close()
