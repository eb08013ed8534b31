"""The AMI handlers one engine runs for all (``ivr/ami/shared_events.py``), with their leases
on a real Redis server: one engine at a time runs them, a successor runs again what it kept,
and without Redis every engine runs them."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ivr.ami.events import EventHandler
from ivr.ami.messages import AmiMessage
from ivr.ami.shared_events import SharedEvents, SharedPbxEvents
from ivr.claims import Leases
from tests.ports import closed_port


class Link:
    """An AMI link's event side: what it delivers goes to the handlers subscribed by name;
    ``connected`` as the link's state."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[EventHandler]] = {}
        self.connected = True

    def on_event(self, name: str, handler: EventHandler) -> None:
        self.handlers.setdefault(name, []).append(handler)

    def deliver(self, name: str, uniqueid: str) -> None:
        for handler in self.handlers.get(name, []):
            handler(AmiMessage([("Event", name), ("Uniqueid", uniqueid)]))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def engine(redis: aioredis.Redis, prefix: str, link: Link, seen: list[tuple[str, str]],
           clock: Callable[[], float] | None = None) -> SharedEvents:
    """An engine's shared handler of ``Hangup`` events on the PBX ``link``, noting what it
    ran in ``seen`` as (lease owner, uniqueid)."""
    leases = Leases(redis, prefix)
    shared = SharedEvents(link, leases, "pbx1", replay_s=60.0, clock=clock or Clock())
    shared.on_event("Hangup", lambda message: seen.append((leases.owner,
                                                             message.get("Uniqueid"))))
    return shared


def two_engines(redis: aioredis.Redis, clock: Callable[[], float] | None = None
                ) -> tuple[SharedEvents, Link, SharedEvents, Link, list[tuple[str, str]]]:
    """Engines a and b on one PBX, each with its link, noting what they ran in one list."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    link_a, link_b, seen = Link(), Link(), []
    return (engine(redis, prefix, link_a, seen, clock), link_a,
            engine(redis, prefix, link_b, seen, clock), link_b, seen)


async def test_one_engine_runs_each_event_and_its_successor_runs_what_it_kept(
        redis_client: aioredis.Redis) -> None:
    clock = Clock()
    a, link_a, b, link_b, seen = two_engines(redis_client, clock)
    assert await a.hold() and not await b.hold()
    owner_a = a._leases.owner
    for uniqueid in ("1.1", "1.2"):  # both engines' links receive every event
        link_a.deliver("Hangup", uniqueid)
        link_b.deliver("Hangup", uniqueid)
    assert seen == [(owner_a, "1.1"), (owner_a, "1.2")]

    clock.now += 61.0  # b's copy of 1.1 and 1.2 is now older than it keeps
    link_b.deliver("Hangup", "1.3")  # a is killed as this arrives: it never runs it
    link_b.deliver("Hangup", "1.4")
    assert not await b.hold()  # a's lease has not lapsed yet
    await redis_client.delete(a._leases.key(a.lease))  # now it has, as at its TTL
    assert await b.hold() and b.leading
    owner_b = b._leases.owner
    link_b.deliver("Hangup", "1.5")
    assert seen[2:] == [(owner_b, "1.3"), (owner_b, "1.4"), (owner_b, "1.5")]
    assert not await a.hold() and not a.leading  # a stalled a, not dead: it stands by
    await a.close()
    await b.close()


async def test_a_stopping_engine_hands_its_lease_over_at_once(
        redis_client: aioredis.Redis) -> None:
    a, link_a, b, link_b, seen = two_engines(redis_client)
    assert await a.hold() and not await b.hold()
    link_b.deliver("Hangup", "2.1")
    link_a.deliver("Hangup", "2.1")
    await a.close()
    assert not a.leading
    assert await b.hold()
    assert [uniqueid for _, uniqueid in seen] == ["2.1", "2.1"]  # once more: idempotent
    await b.close()


async def test_an_engine_whose_link_is_down_hands_the_events_over(
        redis_client: aioredis.Redis) -> None:
    a, link_a, b, link_b, seen = two_engines(redis_client)
    link_b.connected = False
    assert not await b.hold()  # not even while nobody leads: its link hears nothing
    assert await a.hold() and not await b.hold()
    link_a.connected = False  # a's link drops (the PBX found it too slow): b hears 4.1
    link_b.connected = True
    link_b.deliver("Hangup", "4.1")
    assert not await a.hold() and not a.leading
    assert await b.hold()
    assert [uniqueid for _, uniqueid in seen] == ["4.1"]
    link_a.connected = True  # back: b keeps leading
    assert not await a.hold()
    await a.close()
    await b.close()


async def test_without_redis_every_engine_runs_them() -> None:
    dead = aioredis.Redis(port=closed_port(), socket_connect_timeout=1.0,
                          retry=Retry(NoBackoff(), 0))
    a, link_a, b, link_b, seen = two_engines(dead)
    assert await a.hold() and await b.hold()
    link_a.deliver("Hangup", "3.1")
    link_b.deliver("Hangup", "3.1")
    assert len(seen) == 2
    await dead.aclose()


def test_a_shared_handler_takes_exact_event_names() -> None:
    shared = SharedPbxEvents([("pbx1", Link()), ("pbx2", Link())],
                             Leases(aioredis.Redis(), "t:"))
    with pytest.raises(ValueError, match="exact event name"):
        shared.on_event("Queue*", lambda message: None)
