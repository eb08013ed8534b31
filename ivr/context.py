"""What every call flow needs from the running engine, gathered in one object."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ivr.clock import Clock
from ivr.config import Settings
from ivr.live import LiveState
from ivr.prompts import PromptCatalogue


@dataclass
class EngineContext:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    live: LiveState
    prompts: PromptCatalogue
    clock: Clock
    on_emergency: Callable[[int, int], None] | None = None  # (order id, elder id)

    def now(self) -> datetime:
        """The engine clock's current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)
