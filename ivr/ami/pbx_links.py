"""Several Asterisk boxes behind one ``AmiLink``: each call goes to the box that owns its trunk.

A province runs more than one PBX. The engine keeps one AMI link (an ``AmiClient``) to each,
and its parts see them as one link:

- an Originate goes to the box that owns the PJSIP endpoint of its dial string
  (``PJSIP/<number>@<trunk>``, or ``PJSIP/<seat>``), as configured in each box's
  ``endpoints``; a dial string no box claims goes to the first box;
- an action naming a ``Channel`` goes to the box that owns the channel's endpoint (a channel
  name is ``PJSIP/<endpoint>-<8 hex digits>``); any other action goes to the first box;
- event handlers are subscribed on every box. The boxes' uniqueids must not collide: give
  each Asterisk its own ``systemname`` (asterisk.conf), which prefixes them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .events import EventHandler
from .link import AmiLink
from .messages import AmiMessage, AmiResponse, OriginateOutcome

_CHANNEL_SEQUENCE = re.compile(r"-[0-9a-f]{8}$")


def endpoint_of(channel: str) -> str | None:
    """The PJSIP endpoint a dial string or a channel name is on; None for other technologies."""
    tech, _, resource = channel.partition("/")
    if tech.upper() != "PJSIP" or not resource:
        return None
    resource = resource.split("/", 1)[0]
    if "@" in resource:
        return resource.rpartition("@")[2] or None
    return _CHANNEL_SEQUENCE.sub("", resource) or None


@dataclass(frozen=True, slots=True)
class Pbx:
    """One box: its name (for logs), the endpoints it owns, and its AMI link."""

    name: str
    endpoints: frozenset[str]
    link: AmiLink


class PbxLinks:
    """Several boxes as one ``AmiLink``; the first is the default for what no box claims."""

    def __init__(self, boxes: Sequence[Pbx]) -> None:
        if not boxes:
            raise ValueError("at least one PBX")
        self.boxes = list(boxes)
        self._owner = {endpoint: box for box in self.boxes for endpoint in box.endpoints}

    @property
    def first(self) -> Pbx:
        return self.boxes[0]

    def box_for(self, channel: str | None) -> Pbx:
        """The box a dial string or channel name belongs to."""
        endpoint = endpoint_of(channel) if channel else None
        return self._owner.get(endpoint, self.first) if endpoint else self.first

    @property
    def connected(self) -> bool:
        """Some box is reachable (a call for a box that is not fails as not sent)."""
        return any(box.link.connected for box in self.boxes)

    async def wait_connected(self, timeout: float) -> None:
        """Until every box is reachable (a call found its own box down: waiting for that one
        alone would need to know which). Raises AmiTimeout as a single link does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for box in self.boxes:
            if not box.link.connected:
                await box.link.wait_connected(max(0.001, deadline - loop.time()))

    async def action(
        self, name: str, headers: Mapping[str, Any] | None = None, *, timeout: float = 10.0
    ) -> AmiResponse | list[AmiMessage]:
        channel = (headers or {}).get("Channel")
        box = self.box_for(channel if isinstance(channel, str) else None)
        return await box.link.action(name, headers, timeout=timeout)

    async def originate(
        self, *, channel: str, context: str, exten: str, priority: int = 1, caller_id: str,
        variables: Mapping[str, str], timeout_ms: int, action_id: str | None = None,
    ) -> OriginateOutcome:
        return await self.box_for(channel).link.originate(
            channel=channel, context=context, exten=exten, priority=priority,
            caller_id=caller_id, variables=variables, timeout_ms=timeout_ms,
            action_id=action_id)

    def next_action_id(self) -> str:
        return self.first.link.next_action_id()

    async def late_outcome(self, action_id: str, timeout: float) -> OriginateOutcome | None:
        """Only the box the Originate went to waits for it; the others answer None at once."""
        for box in self.boxes:
            outcome = await box.link.late_outcome(action_id, timeout)
            if outcome is not None:
                return outcome
        return None

    def on_event(self, name: str, handler: EventHandler) -> None:
        for box in self.boxes:
            box.link.on_event(name, handler)

    def links(self) -> Iterable[AmiLink]:
        return (box.link for box in self.boxes)
