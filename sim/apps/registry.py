"""Dialplan applications by name (case-insensitive, as Asterisk finds them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.channel import Channel
    from sim.interpreter import Runner
    from sim.pbx import Pbx


@dataclass
class AppContext:
    chan: Channel
    pbx: Pbx
    runner: Runner


AppFn = Callable[[AppContext, str], Awaitable[int]]
_APPS: dict[str, tuple[str, AppFn]] = {}


def application(name: str) -> Callable[[AppFn], AppFn]:
    def register(fn: AppFn) -> AppFn:
        _APPS[name.lower()] = (name, fn)
        return fn

    return register


def find_app(name: str) -> AppFn | None:
    item = _APPS.get(name.lower())
    return item[1] if item else None


def app_names() -> list[str]:
    return sorted(canonical for canonical, _fn in _APPS.values())
