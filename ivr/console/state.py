"""What every console request reaches: settings, database sessions, templates, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from dispatch.audit import Actor
from ivr.config import Settings


@dataclass
class ConsoleState:
    """The console's shared parts, on ``app.state.console``."""

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    templates: Jinja2Templates
    now: Callable[[], datetime]


def console_state(request: Request) -> ConsoleState:
    """The state of the console that serves ``request``."""
    state: ConsoleState = request.app.state.console
    return state


def client_address(request: Request) -> str:
    """The peer's address, for the audit log and the login throttle."""
    return request.client.host if request.client else "unknown"


def actor(request: Request) -> Actor:
    """The signed-in account acting from this request's address (for the audit log)."""
    from ivr.console.auth import current_account

    account = current_account(request)
    assert account is not None, "actor() is for guarded endpoints"
    return Actor.of(account, client_address(request))
