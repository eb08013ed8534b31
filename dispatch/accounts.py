"""Console accounts: who is signed in, their role, their region and their softphone seat."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dispatch.regions import RegionScope


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Account:
    """A console user as the console sees them once signed in (no password material)."""

    id: int
    name: str
    role: Role
    scope: RegionScope
    seat: str | None = None  # the PJSIP endpoint of their softphone, e.g. "op1001"
