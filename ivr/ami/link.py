"""What the engine's parts need of an AMI connection: the contract ``AmiClient`` fulfils."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .events import EventHandler
from .messages import AmiMessage, AmiResponse, OriginateOutcome


class EventSource(Protocol):
    """Where AMI event handlers subscribe: a link, or the handlers one engine runs for all."""

    def on_event(self, name: str, handler: EventHandler) -> None: ...


class AmiLink(EventSource, Protocol):
    """An AMI connection: actions, asynchronous Originate, and event subscriptions."""

    @property
    def connected(self) -> bool: ...

    async def wait_connected(self, timeout: float) -> None: ...

    async def action(
        self, name: str, headers: Mapping[str, Any] | None = None, *, timeout: float = 10.0
    ) -> AmiResponse | list[AmiMessage]: ...

    async def originate(  # see AmiClient.originate
        self, *, channel: str, context: str, exten: str, priority: int = 1, caller_id: str,
        variables: Mapping[str, str], timeout_ms: int, action_id: str | None = None,
    ) -> OriginateOutcome: ...

    def next_action_id(self) -> str: ...

    async def late_outcome(self, action_id: str, timeout: float) -> OriginateOutcome | None: ...
