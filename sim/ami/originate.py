"""The Originate action and its OriginateResponse event (action_originate, fast_originate)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred

from sim.conf import TRUE_WORDS as _TRUE
from sim.functions import parse_callerid
from sim.pbx import OriginateRequest, OriginateResult

from .events import AmiEvent
from .framing import Request
from .session import AmiSession
from .variables import originate_variables
from .wire import ack, error

log = logging.getLogger(__name__)

ANSWERED = 4


@dataclass(frozen=True)
class OriginateParams:
    """An Originate request after Asterisk's validation."""

    channel: str  # tech/data as requested
    context: str
    exten: str
    priority: int
    timeout_ms: int
    caller_id: str
    application: str = ""
    data: str = ""
    account: str = ""
    channel_id: str = ""
    variables: dict[str, str] = field(default_factory=dict)

    def request(self) -> OriginateRequest:
        return OriginateRequest(
            channel=self.channel, context=self.context, exten=self.exten,
            priority=self.priority, application=self.application, data=self.data,
            timeout_ms=self.timeout_ms, caller_id=self.caller_id,
            variables=dict(self.variables), account=self.account,
        )


def _int(text: str) -> int | None:
    """sscanf("%d"): leading blanks, optional sign, digits; trailing text ignored."""
    text = text.lstrip()
    sign = -1 if text.startswith("-") else 1
    text = text[1:] if text[:1] in ("+", "-") else text
    digits = len(text) - len(text.lstrip("0123456789"))
    return sign * int(text[:digits]) if digits else None


def _priority(session: AmiSession, request: Request) -> int | None:
    """Numeric priority, or a label looked up in the dialplan; 0 when absent."""
    text = request.get("Priority")
    if not text:
        return 0
    number = _int(text)
    if number is not None:
        return number
    ext = session.factory.pbx.dialplan.find(request.get("Context"), request.get("Exten"))
    label = ext.labels.get(text) if ext is not None else None
    return label if label and label > 0 else None


def _parse(session: AmiSession, request: Request) -> OriginateParams | str:
    """The request's parameters, or the error message Asterisk would answer."""
    channel, timeout_text = request.get("Channel"), request.get("Timeout")
    if not channel:
        return "Channel not specified"
    priority = _priority(session, request)
    if priority is None:
        return "Invalid priority"
    timeout = _int(timeout_text) if timeout_text else 30000
    if timeout is None:
        return "Invalid timeout"
    if "/" not in channel:
        return "Invalid channel"
    params = OriginateParams(
        channel=channel, context=request.get("Context"), exten=request.get("Exten"),
        priority=priority, timeout_ms=timeout, caller_id=request.get("CallerID"),
        application=request.get("Application"), data=request.get("Data"),
        account=request.get("Account"), channel_id=request.get("ChannelId"),
        variables=dict(originate_variables(request.get_all("Variable"))),
    )
    if priority and not params.application:
        ext = session.factory.pbx.dialplan.find(params.context, params.exten)
        if ext is None or priority not in ext.steps:
            return "Extension does not exist."
    return params


def action_originate(session: AmiSession, request: Request) -> Deferred | None:
    params = _parse(session, request)
    if isinstance(params, str):
        session.send(error(request, params))
        return None
    runnable = bool(params.application) or bool(params.priority)
    if request.get("Async").lower() in _TRUE:
        session.send(ack(request, "Originate successfully queued"))
        if runnable:
            _dial(session, params).addCallback(lambda result: _report(session, request, params,
                                                                       result))
        else:  # nowhere to send the answered channel: Asterisk reports a failure
            _report(session, request, params, OriginateResult(0, None, None))
        return None
    if not runnable:
        session.send(error(request, "Originate with 'Exten' requires 'Context' and 'Priority'"))
        return None

    def answer(result: OriginateResult) -> None:
        if result.reason == ANSWERED:
            session.send(ack(request, "Originate successfully queued"))
        else:
            session.send(error(request, "Originate failed"))

    return _dial(session, params).addCallback(answer)


def _dial(session: AmiSession, params: OriginateParams) -> Deferred:
    """The PBX's outcome; an internal failure reads as reason 0 (failed)."""

    def failed(failure: Any) -> OriginateResult:
        log.error("simulated originate failed: %s", failure.getErrorMessage())
        return OriginateResult(0, None, None)

    return session.factory.pbx.originate(params.request()).addErrback(failed)


def _report(session: AmiSession, request: Request, params: OriginateParams,
            result: OriginateResult) -> None:
    """Broadcast OriginateResponse with fast_originate()'s header order."""
    answered = result.reason == ANSWERED
    name, number = parse_callerid(params.caller_id)
    headers: list[tuple[str, str | None]] = []
    if request.get("ActionID"):
        headers.append(("ActionID", request.get("ActionID")))
    headers += [
        ("Response", "Success" if answered else "Failure"),
        ("Channel", (result.channel if answered else None) or params.channel),
    ]
    if params.application:
        headers += [("Application", params.application), ("Data", params.data)]
    else:
        headers += [("Context", params.context), ("Exten", params.exten)]
    headers += [
        ("Reason", str(result.reason)),
        ("Uniqueid", (result.uniqueid if answered else None) or params.channel_id or "<unknown>"),
        ("CallerIDNum", number or "<unknown>"),
        ("CallerIDName", name or "<unknown>"),
    ]
    session.factory.broadcast(AmiEvent.of("OriginateResponse", "call", headers))
