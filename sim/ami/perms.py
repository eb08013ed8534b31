"""AMI permission classes and event masks, with Asterisk's manager.c semantics."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable

from sim.conf import FALSE_WORDS as _FALSE
from sim.conf import TRUE_WORDS as _TRUE

ALL = 0x7FFFFFFF  # INT_MAX: the "all" class

CLASSES: dict[str, int] = {
    "system": 1 << 0,
    "call": 1 << 1,
    "log": 1 << 2,
    "verbose": 1 << 3,
    "command": 1 << 4,
    "agent": 1 << 5,
    "user": 1 << 6,
    "config": 1 << 7,
    "dtmf": 1 << 8,
    "reporting": 1 << 9,
    "cdr": 1 << 10,
    "dialplan": 1 << 11,
    "originate": 1 << 12,
    "agi": 1 << 13,
    "cc": 1 << 15,
    "aoc": 1 << 16,
    "test": 1 << 17,
    "security": 1 << 18,
    "message": 1 << 30,
}
_LABELS = [*CLASSES.items(), ("all", ALL), ("none", 0)]


def _instring(big: str, small: str) -> bool:
    """ast_instring(): comma list membership, with Asterisk's prefix quirk."""
    segments = big.split(",")
    for segment in segments[:-1]:
        if small.startswith(segment):
            return True
    return segments[-1] == small


def mask_of(names: str | set[str] | frozenset[str]) -> int:
    """Bit mask of a class list (``"call,user"`` or a set of names; ``all`` = every class)."""
    if isinstance(names, str):
        return _or(num for label, num in _LABELS if _instring(names, label))
    return _or(num for label, num in _LABELS if label in {n.lower() for n in names})


def class_names(text: str) -> set[str]:
    """The classes a manager.conf ``read =``/``write =`` list grants (get_perm())."""
    mask = mask_of(text)
    return {name for name, num in CLASSES.items() if mask & num}


def _or(values: Iterable[int]) -> int:
    return functools.reduce(operator.or_, values, 0)


def strings_to_mask(text: str) -> int:
    """Asterisk's strings_to_mask(): -1 for empty, a number, true/false, or a class list."""
    if not text:
        return -1
    if text.isdigit() and text.isascii():
        return int(text)
    if text.lower() in _FALSE:
        return 0
    if text.lower() in _TRUE:
        return _or(num for _, num in _LABELS)
    return mask_of(text)


def authority_to_str(mask: int) -> str:
    """``call,all`` style list for a Privilege header (``<none>`` when empty)."""
    labels = [label for label, num in _LABELS[:-1] if mask & num]
    return ",".join(labels) or "<none>"


def privilege_mask(privilege: str | int | set[str] | frozenset[str]) -> int:
    """Category of an event given as a mask, a ``call,all`` string or a set of names.

    ``all`` inside a privilege string only marks the list; it adds no class.
    """
    if isinstance(privilege, int):
        return privilege
    if isinstance(privilege, str):
        return _privilege_string(privilege)
    return mask_of({n.strip() for n in privilege} - {"all", ""})


@functools.lru_cache(maxsize=64)
def _privilege_string(privilege: str) -> int:
    return mask_of({n.strip() for n in privilege.split(",")} - {"all", ""})
