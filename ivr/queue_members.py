"""The operators as the queue sees them (logged in, paused, on a call), kept in Redis for the
supervisor's wallboard.

The engine follows app_queue's member events (``QueueMemberStatus``, ``QueueMemberPause``,
``QueueMemberAdded``, ``QueueMemberRemoved``) and, on every AMI (re)connection, replaces the
whole picture with a ``QueueStatus`` listing. Each member of each queue is one field of the
hash ``<prefix>queue:members`` (``<queue>|<interface>`` -> JSON); the console reads it with
``operator_counts``. Every engine process writes the same facts: the last write wins.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ivr.ami.errors import AmiError
from ivr.ami.link import AmiLink
from ivr.ami.messages import AmiMessage

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError, TimeoutError)
UNREACHABLE = {"4", "5"}  # AST_DEVICE_INVALID, AST_DEVICE_UNAVAILABLE: softphone not there
ON_A_CALL = {"2", "3", "7", "8"}  # INUSE, BUSY, RINGINUSE, ONHOLD


def members_key(prefix: str) -> str:
    return f"{prefix}queue:members"


@dataclass(frozen=True, slots=True)
class Member:
    queue: str
    interface: str
    name: str
    status: str  # ast_device_state as a number
    paused: bool
    in_call: bool

    @property
    def field(self) -> str:
        return f"{self.queue}|{self.interface}"

    def to_json(self) -> str:
        return json.dumps({"queue": self.queue, "interface": self.interface, "name": self.name,
                           "status": self.status, "paused": self.paused,
                           "in_call": self.in_call})

    @classmethod
    def from_event(cls, message: AmiMessage) -> Member | None:
        """From QueueMember (a listing) or QueueMemberStatus/Added/Pause; None if it names
        no member."""
        interface = message.get("Interface") or message.get("Location")
        queue = message.get("Queue")
        if not interface or not queue:
            return None
        return cls(queue=queue, interface=interface,
                   name=message.get("MemberName") or message.get("Name") or interface,
                   status=message.get("Status", "0"), paused=message.get("Paused") == "1",
                   in_call=message.get("InCall") == "1")


@dataclass(frozen=True, slots=True)
class OperatorCounts:
    """Distinct softphones over every queue: reachable, paused, on a call, free."""

    logged_in: int = 0
    paused: int = 0
    on_call: int = 0
    available: int = 0


def count_operators(members: Iterable[Member]) -> OperatorCounts:
    """A member counts once however many queues it serves: paused if paused in every queue it
    is in, on a call if any queue says so."""
    by_interface: dict[str, list[Member]] = {}
    for member in members:
        if member.status not in UNREACHABLE:
            by_interface.setdefault(member.interface, []).append(member)
    paused = on_call = available = 0
    for entries in by_interface.values():
        busy = any(m.in_call or m.status in ON_A_CALL for m in entries)
        resting = all(m.paused for m in entries)
        on_call += busy
        paused += resting and not busy
        available += not busy and not resting
    return OperatorCounts(len(by_interface), paused, on_call, available)


async def operator_counts(client: aioredis.Redis, prefix: str) -> OperatorCounts | None:
    """The wallboard's operator figures; None if Redis cannot be read."""
    try:
        raw = await client.hvals(members_key(prefix))
    except REDIS_ERRORS as exc:
        log.warning("queue members not read: %s", exc)
        return None
    members = []
    for value in raw:
        try:
            members.append(Member(**json.loads(value)))
        except (ValueError, TypeError):
            continue
    return count_operators(members)


class QueueMembers:
    """Writes the members' state to Redis as app_queue reports it.

    Events only note the change; one task at a time writes what changed since its last
    write in one pipeline, so a burst of member events (hundreds of operators logging in)
    takes one Redis connection, not one each."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.key = members_key(prefix)
        self._pending: dict[str, str | None] = {}  # field -> JSON, None to delete
        self._writer: asyncio.Task[None] | None = None

    def subscribe(self, ami: AmiLink) -> None:
        for name in ("QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause"):
            ami.on_event(name, self.on_member)
        ami.on_event("QueueMemberRemoved", self.on_removed)

    async def on_member(self, message: AmiMessage) -> None:
        member = Member.from_event(message)
        if member is not None:
            self._note(member.field, member.to_json())

    async def on_removed(self, message: AmiMessage) -> None:
        member = Member.from_event(message)
        if member is not None:
            self._note(member.field, None)

    def _note(self, field: str, value: str | None) -> None:
        self._pending[field] = value
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending(), name="queue members")

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            pipe = self.client.pipeline(transaction=False)
            changed = {field: value for field, value in batch.items() if value is not None}
            gone = [field for field, value in batch.items() if value is None]
            if changed:
                pipe.hset(self.key, mapping=changed)
            if gone:
                pipe.hdel(self.key, *gone)
            await self._write(pipe.execute())

    async def refresh(self, listing: Sequence[AmiMessage]) -> None:
        """Replace the picture with a QueueStatus ``listing`` of every queue (on (re)connect)."""
        members = [m for m in (Member.from_event(item) for item in listing
                               if item.get("Event") == "QueueMember") if m is not None]
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.key)
        if members:
            pipe.hset(self.key, mapping={m.field: m.to_json() for m in members})
        await self._write(pipe.execute())

    async def close(self) -> None:
        """Finish the write in progress (the engine stops)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _write(self, operation: Awaitable[Any]) -> None:
        try:
            await operation
        except REDIS_ERRORS as exc:
            log.warning("queue member state not written: %s", exc)


async def queue_listing(ami: AmiLink) -> list[AmiMessage] | None:
    """QueueStatus of every queue: members and waiting callers; None (logged) if refused."""
    try:
        reply = await ami.action("QueueStatus")
    except AmiError as exc:
        log.warning("queues not listed: %s", exc)
        return None
    if not isinstance(reply, list):
        log.warning("queues not listed: %s", reply.get("Message"))
        return None
    return reply
