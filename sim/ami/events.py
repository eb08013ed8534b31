"""Events the AMI layer itself emits (FullyBooted, SuccessfulAuth, OriginateResponse, ...)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from .perms import authority_to_str, privilege_mask
from .wire import encode


@dataclass(frozen=True)
class AmiEvent:
    """An event ready to send: its category decides which sessions may read it."""

    name: str
    category: int
    headers: tuple[tuple[str, str | None], ...]  # a None value marks a raw line

    @classmethod
    def of(cls, name: str, privilege: str | int | Iterable[str],
           headers: Iterable[tuple[str, str | None]]) -> AmiEvent:
        mask = privilege_mask(privilege if isinstance(privilege, str | int) else set(privilege))
        return cls(name, mask, tuple(
            (str(k), None if v is None else str(v)) for k, v in headers
        ))

    @cached_property
    def payload(self) -> bytes:
        """The event on the wire, encoded once for every session and filter that needs it."""
        return encode([("Event", self.name), ("Privilege", authority_to_str(self.category)),
                       *self.headers])

    def to_bytes(self) -> bytes:
        return self.payload


def event_tv(timestamp: float) -> str:
    """Asterisk's security-event time format: 2026-11-22T11:28:21.569+0000 (UTC)."""
    millis = int(timestamp * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{millis:03d}+0000"


def fully_booted(uptime_s: int) -> AmiEvent:
    return AmiEvent.of("FullyBooted", "system", [
        ("Uptime", str(uptime_s)), ("LastReload", str(uptime_s)), ("Status", "Fully Booted"),
    ])


def successful_auth(*, account: str, session_id: str, local: tuple[str, int],
                    remote: tuple[str, int], now: float, session_start: float) -> AmiEvent:
    return AmiEvent.of("SuccessfulAuth", "security", [
        ("EventTV", event_tv(now)),
        ("Severity", "Informational"),
        ("Service", "AMI"),
        ("EventVersion", "1"),
        ("AccountID", account),
        ("SessionID", session_id),
        ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
        ("RemoteAddress", f"IPV4/TCP/{remote[0]}/{remote[1]}"),
        ("UsingPassword", "0"),
        ("SessionTV", event_tv(session_start)),
    ])
