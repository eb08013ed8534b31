"""manager.conf ``eventfilter``: which events a user's sessions receive, as manager.c decides.

Two forms, both repeatable in a user's section:

- structured (Asterisk 22): ``eventfilter(action(include|exclude),name(Hangup),header(Channel),
  method(regex|exact|starts_with|ends_with|contains|none)) = [expression]``; with ``header``
  the expression is applied to that header's value only, else to the whole event payload;
  the method defaults to ``none`` (the name and header decide alone), so an expression
  needs a method; ``name`` is compared case-sensitively;
- legacy: ``eventfilter = <regex>`` matched anywhere in the payload, ``!<regex>`` to exclude;
  an empty one is refused.

manager.c skips a line it refuses (the simulator logs why) and keeps the others.

No filters: every event. Only includes: an event matching any of them. Only excludes: every
event matching none of them. Both: an event some include matches and no exclude does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .events import AmiEvent

METHODS = frozenset({"regex", "exact", "starts_with", "ends_with", "contains", "none"})
_CRITERION = re.compile(r"\s*(action|name|header|method)\(([^()]*)\)\s*")


@dataclass(frozen=True, slots=True)
class EventFilter:
    include: bool
    name: str | None = None
    header: str | None = None
    method: str = "regex"
    expression: str = ""

    def matches(self, event: AmiEvent) -> bool:
        if self.name is not None and event.name != self.name:
            return False
        if self.header is not None:
            values = [value for key, value in event.headers
                      if value is not None and key.lower() == self.header.lower()]
            return bool(values) and any(self._applies(value) for value in values)
        return self._applies(event.payload.decode("utf-8", errors="replace")
                             if self.method != "none" else "")

    def _applies(self, data: str) -> bool:
        """The expression against ``data`` (method none: anything; ``parse_filter`` gives
        every other method an expression)."""
        expression, method = self.expression, self.method
        if method == "none":
            return True
        if method == "exact":
            return data == expression
        if method == "starts_with":
            return data.startswith(expression)
        if method == "ends_with":
            return data.endswith(expression)
        if method == "contains":
            return expression in data
        return re.search(expression, data) is not None


def parse_filter(key: str, value: str) -> EventFilter:
    """One ``eventfilter`` line (its key, with any criteria, and its value); ValueError says
    what is wrong, as Asterisk refuses the line."""
    key = key.strip()
    value = value.strip()
    if key.lower() == "eventfilter":  # legacy: a regex, ! to exclude
        include = not value.startswith("!")
        expression = value if include else value[1:]
        if not expression:
            raise ValueError("legacy eventfilter with no filter pattern")
        _compile(expression)
        return EventFilter(include, expression=expression)
    if not key.lower().startswith("eventfilter(") or not key.endswith(")"):
        raise ValueError(f"not an eventfilter: {key!r}")
    criteria: dict[str, str] = {}
    inner = key[len("eventfilter("):-1]
    for part in _split(inner):
        found = _CRITERION.fullmatch(part)
        if found is None:
            raise ValueError(f"eventfilter criterion {part.strip()!r} not understood")
        kind, argument = found.group(1), found.group(2).strip()
        if kind in criteria:
            raise ValueError(f"eventfilter gives {kind}() twice")
        criteria[kind] = argument
    action = criteria.get("action", "include").lower()
    if action not in ("include", "exclude"):
        raise ValueError(f"eventfilter action({action}) is neither include nor exclude")
    method = criteria.get("method", "none").lower()
    if method not in METHODS:
        raise ValueError(f"eventfilter method({method}) is unknown")
    if method == "none" and value:
        raise ValueError("eventfilter method can't be 'none' with a filter pattern")
    if method != "none" and not value:
        raise ValueError(f"eventfilter method({method}) with no filter pattern")
    if method == "regex":
        _compile(value)
    return EventFilter(action == "include", criteria.get("name") or None,
                       criteria.get("header") or None, method, value)


def _split(inner: str) -> list[str]:
    """The criteria of ``action(x),name(y)``: commas outside parentheses separate them."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(inner):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(inner[start:index])
            start = index + 1
    parts.append(inner[start:])
    return [part for part in parts if part.strip()]


def _compile(expression: str) -> None:
    try:
        re.compile(expression)
    except re.error as exc:
        raise ValueError(f"eventfilter regex {expression!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class EventFilters:
    """A user's filters, applied in manager.c's order."""

    includes: tuple[EventFilter, ...] = ()
    excludes: tuple[EventFilter, ...] = ()

    @classmethod
    def of(cls, filters: Iterable[EventFilter]) -> EventFilters:
        every = list(filters)
        return cls(tuple(f for f in every if f.include), tuple(f for f in every if not f.include))

    def passes(self, event: AmiEvent) -> bool:
        if self.includes and not any(f.matches(event) for f in self.includes):
            return False
        return not any(f.matches(event) for f in self.excludes)
