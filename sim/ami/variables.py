"""Reading Originate's Variable headers the way Asterisk does."""

from __future__ import annotations

from sim.dialplan.args import split_args


def originate_variables(values: list[str]) -> list[tuple[str, str]]:
    """All ``name=value`` pairs of the Variable headers, in the order they were sent."""
    pairs: list[tuple[str, str]] = []
    for header in values:
        for item in split_args(header.lstrip()):
            name, eq, value = item.partition("=")
            if eq and name:
                pairs.append((name, value))
    return pairs
