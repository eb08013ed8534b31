"""What every call flow needs from the running engine, gathered in one object."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
    _write_gate: contextlib.AbstractAsyncContextManager[object] = field(
        default_factory=contextlib.nullcontext
    )

    def __post_init__(self) -> None:
        if self.settings.database.url.startswith("sqlite"):
            # SQLite has one writer at a time; queueing writers here is fast and fair, where
            # SQLite's own busy handler sleeps up to 100 ms per retry under contention.
            self._write_gate = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session for one write transaction, serialised where the database requires it."""
        async with self._write_gate, self.sessions() as session:
            yield session

    def now(self) -> datetime:
        """The engine clock's current time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)
