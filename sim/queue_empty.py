"""queues.conf ``joinempty`` and ``leavewhenempty``: when a queue counts as empty.

As app_queue's parse_empty_options() and get_member_status(): an option is a comma list of
conditions (``paused``, ``penalty``, ``inuse``, ``ringing``, ``unavailable``, ``invalid``,
``unknown``, ``wrapup``) or a shorthand (``loose``, ``strict``, yes/no) that replaces what came
before. A queue is empty under a set of conditions when no member escapes all of them; with no
conditions it is never empty (a caller may join, and stays).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sim.conf import FALSE_WORDS as _FALSE
from sim.conf import TRUE_WORDS as _TRUE

log = logging.getLogger(__name__)

CONDITIONS = frozenset(
    {"paused", "penalty", "inuse", "ringing", "unavailable", "invalid", "unknown", "wrapup"})
LOOSE = frozenset({"penalty", "invalid"})
STRICT = LOOSE | {"paused", "unavailable"}
# joinempty = no, leavewhenempty = yes
EMPTY_WHEN_PAUSED = LOOSE | {"paused"}


def parse_empty_options(value: str, joinempty: bool,
                        current: frozenset[str] = frozenset()) -> frozenset[str]:
    """The conditions after an option line ``value`` of ``joinempty`` (else
    ``leavewhenempty``). Words are not trimmed, as app_queue does not; an unknown one is
    logged and ignored."""
    empty = set(current)
    for option in value.split(","):
        word = option.lower()
        if word in CONDITIONS:
            empty.add(word)
        elif word == "loose":
            empty = set(LOOSE)
        elif word == "strict":
            empty = set(STRICT)
        elif (word in _FALSE and joinempty) or (word in _TRUE and not joinempty):
            empty = set(EMPTY_WHEN_PAUSED)
        elif word in _TRUE or word in _FALSE:
            empty = set()
        else:
            log.warning("Unknown option %s for '%s'", option,
                        "joinempty" if joinempty else "leavewhenempty")
    return frozenset(empty)


def is_empty(members: Iterable[tuple[str, bool]], conditions: frozenset[str]) -> bool:
    """Whether no member is available under ``conditions``; ``members`` are (device state as
    ``NOT_INUSE``/``INUSE``/``RINGING``/``UNAVAILABLE``/``INVALID``..., paused). Members have
    no penalty and no wrap-up time here, so those conditions never exclude one."""
    if not conditions:
        return False
    for state, paused in members:
        if state.lower() in conditions or (paused and "paused" in conditions):
            continue
        return False
    return True
