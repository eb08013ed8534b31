"""What the engine checks of its PBX on every AMI (re)connection, and ``hotline check-pbx``.

- ListCommands lists the actions the AMI user may run (Asterisk lists only those whose write
  class the user has, main/manager.c action_listcommands): each action the engine sends must
  be there, else the report names the class manager.conf must grant.
- ShowDialPlan with ``Context`` (config OR reporting: the shipped user has reporting) for each
  context the engine originates into: "Did not find context ..." is a failure.
- QueueStatus (no class needed) for the queues the dialplan uses (its globals HOTLINE_QUEUE and
  HOTLINE_OVERFLOW_QUEUE, read with Getvar): a queue app_queue does not list is a failure.

A failure is logged and kept as the engine's PBX health; the engine goes on serving whatever
still works.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ivr.ami.errors import AmiError
from ivr.ami.link import AmiLink
from ivr.ami.messages import AmiMessage, AmiResponse
from ivr.ami.privileges import ENGINE_ACTIONS, refusal
from ivr.dialplan_contract import Context, DialplanGlobal

log = logging.getLogger(__name__)

ORIGINATE_CONTEXTS = tuple(Context)
QUEUE_GLOBALS = {DialplanGlobal.QUEUE: "operators",
                 DialplanGlobal.OVERFLOW_QUEUE: "operators-overflow"}
_PRIV = re.compile(r"^(?P<synopsis>.*) \(Priv: (?P<priv>[^)]*)\)$")


@dataclass
class PbxReport:
    """Each check as a line; ``problems`` are those that failed, ``unanswered`` those the
    PBX did not answer (a busy box: nothing is known to be wrong)."""

    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unanswered

    def lines(self) -> list[str]:
        return [*(f"ok    {line}" for line in self.passed),
                *(f"FAIL  {line}" for line in self.problems),
                *(f"NOT ANSWERED  {line}" for line in self.unanswered)]


def permitted_actions(reply: Any) -> dict[str, str]:
    """``{action (lower case): privilege}`` from a ListCommands response."""
    found: dict[str, str] = {}
    for name, value in getattr(reply, "pairs", []):
        match = _PRIV.match(value)
        if match and name not in ("Response", "ActionID", "Message"):
            found[name.lower()] = match.group("priv")
    return found


async def check_pbx(ami: AmiLink, contexts: Iterable[str] = ORIGINATE_CONTEXTS) -> PbxReport:
    """Run every check over ``ami`` (an AmiClient, connected)."""
    report = PbxReport()
    try:
        listing = await ami.action("ListCommands")
    except AmiError as exc:
        report.problems.append(f"ListCommands not answered: {exc}")
        return report
    allowed = permitted_actions(listing)
    for need in ENGINE_ACTIONS.values():
        if need.name.lower() in allowed:
            report.passed.append(f"AMI action {need.name} permitted ({need.why})")
        elif need.classes:
            report.problems.append(
                f"AMI action {need.name} not permitted: manager.conf needs write={need.grant} "
                f"for this user (Asterisk registers it as {','.join(need.classes)}; "
                f"{need.why})")
        else:
            report.problems.append(f"AMI action {need.name} missing: its module is not loaded "
                                   f"({need.why})")
    if "showdialplan" in allowed:
        for context in contexts:
            await _check_context(ami, context, report)
    else:
        report.problems.append("dialplan contexts not checked: ShowDialPlan not permitted")
    if "queuestatus" in allowed:
        for queue in await _queue_names(ami):
            await _check_queue(ami, queue, report)
    return report


async def _ask(ami: AmiLink, action: str, headers: dict[str, str], what: str,
               report: PbxReport) -> AmiResponse | list[AmiMessage] | None:
    """``action``'s reply, or None with "``what`` not checked" noted in ``report``."""
    try:
        return await ami.action(action, headers)
    except AmiError as exc:
        report.unanswered.append(f"{what} not checked: {exc}")
        return None


async def _check_context(ami: AmiLink, context: str, report: PbxReport) -> None:
    reply = await _ask(ami, "ShowDialPlan", {"Context": context}, f"context {context}", report)
    if reply is None:
        return
    if isinstance(reply, list):
        report.passed.append(f"dialplan context {context} exists")
    else:
        report.problems.append(f"dialplan context {context}: "
                               f"{refusal('ShowDialPlan', reply.get('Message'))}")


async def _queue_names(ami: AmiLink) -> list[str]:
    """The dialplan's queue names (its globals), or the shipped ones if they cannot be read."""
    names = []
    for variable, default in QUEUE_GLOBALS.items():
        value = ""
        try:
            reply = await ami.action("Getvar", {"Variable": variable})
            if not isinstance(reply, list) and reply.get("Response") == "Success":
                value = reply.get("Value")
        except AmiError:
            pass
        names.append(value or default)
    return names


async def _check_queue(ami: AmiLink, queue: str, report: PbxReport) -> None:
    reply = await _ask(ami, "QueueStatus", {"Queue": queue}, f"queue {queue}", report)
    if reply is None:
        return
    items = reply if isinstance(reply, list) else []
    if any(m.get("Event") == "QueueParams" and m.get("Queue") == queue for m in items):
        report.passed.append(f"queue {queue} answers QueueStatus")
    elif not isinstance(reply, list):
        report.problems.append(f"queue {queue}: {refusal('QueueStatus', reply.get('Message'))}")
    else:
        report.problems.append(f"queue {queue} is not configured (queues.conf)")


def log_report(report: PbxReport, pbx: str = "pbx") -> None:
    """One line per failure (error) or per check the box did not answer (warning: it is
    checked again at the next connection), or one line that all is well, naming the box."""
    for problem in report.problems:
        log.error("PBX check of %s: %s", pbx, problem)
    for unanswered in report.unanswered:
        log.warning("PBX check of %s: %s (the PBX is busy or slow; checked again at the "
                    "next connection)", pbx, unanswered)
    if report.ok:
        log.info("PBX check of %s passed: %d checks", pbx, len(report.passed))
