"""The AMI actions the engine sends and the write classes Asterisk 22 registers them with.

Asterisk runs an action for a user who has ANY of its classes (main/manager.c,
process_message()); ``grant`` is the one the shipped manager.conf gives, the least powerful
that works. Sources: main/manager.c (__init_manager), main/pbx.c (ShowDialPlan),
apps/app_queue.c (QueueStatus).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PERMISSION_DENIED = "Permission denied"


@dataclass(frozen=True)
class ActionNeed:
    name: str
    classes: tuple[str, ...]  # as registered; empty = any logged-in user
    grant: str  # the class manager.conf should give for it ("" when none is needed)
    why: str


ENGINE_ACTIONS: Mapping[str, ActionNeed] = {need.name: need for need in (
    ActionNeed("Originate", ("originate",), "originate",
               "family escalation, vendor offers, callbacks, the bridge's third party, "
               "click-to-call"),
    ActionNeed("Redirect", ("call",), "call", "the operator bridge moves the call to its room"),
    ActionNeed("CoreShowChannels", ("system", "reporting"), "reporting",
               "the operator bridge finds the elder's and the operator's channels"),
    ActionNeed("ShowDialPlan", ("config", "reporting"), "reporting",
               "the start-up check of the contexts the engine originates into"),
    ActionNeed("QueueStatus", (), "", "the start-up check of the operator queues"),
    ActionNeed("Getvar", ("call", "reporting"), "reporting",
               "the start-up check reads the dialplan's queue names"),
    ActionNeed("Ping", (), "", "the link's keepalive"),
)}


def denied(action: str) -> str:
    """What to tell an operator when Asterisk refused ``action`` with Permission denied."""
    need = ENGINE_ACTIONS.get(action)
    if need is None or not need.grant:
        return f"permission denied for {action}"
    return f"permission denied for {action} (needs write={need.grant})"


def refusal(action: str, message: str) -> str:
    """An Error response to ``action``, said plainly."""
    if message == PERMISSION_DENIED:
        return denied(action)
    return f"{action} refused: {message or 'no reason given'}"
