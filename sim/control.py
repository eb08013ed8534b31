"""Control protocol: JSON lines over TCP on loopback, used by tests, the demo and benchmarks.

Requests carry an ``id`` that the response echoes; requests run concurrently (a ``call``
answers when the call has ended). Operations: ``call``, ``originate``, ``phones``,
``operators``, ``register``, ``seats``, ``globals``, ``stats``, ``originated``, ``channels``,
``alarm``, ``shutdown``.
Any malformed request gets ``{"ok": false, "error": "..."}``; the connection stays usable.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import protocol
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.protocols.basic import LineOnlyReceiver

from sim.alarm_box import AlarmBox, AlarmBoxError, BoxEvent, Corruption
from sim.parties import CallerParty, PartyError
from sim.pbx import OriginateRequest, OriginateResult, Pbx

log = logging.getLogger(__name__)

MAX_LINE = 4 * 1024 * 1024


class RequestError(ValueError):
    """The request is well-formed JSON but not a valid operation."""


def _str(data: dict, key: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or any(c in value for c in "\r\n\x00"):
        raise RequestError(f"{key} must be a single-line string")
    return value


def originate_request(data: dict) -> OriginateRequest:
    variables = data.get("variables") or {}
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise RequestError("variables must map names to strings")
    timeout = data.get("timeout_ms", 30000)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        raise RequestError("timeout_ms must be a non-negative integer")
    priority = data.get("priority", 1)
    if not isinstance(priority, (int, str)) or isinstance(priority, bool):
        raise RequestError("priority must be a number or a label")
    return OriginateRequest(
        channel=_str(data, "channel"), context=_str(data, "context"), exten=_str(data, "exten"),
        priority=priority, application=_str(data, "application"), data=_str(data, "data"),
        timeout_ms=timeout, caller_id=_str(data, "caller_id"), variables=variables,
    )


class ControlService:
    """Operations on the PBX, independent of the wire."""

    def __init__(self, pbx: Pbx, stop: Callable[[], None],
                 alarm_spool: Path | None = None) -> None:
        self.pbx = pbx
        self.stop = stop
        self.alarm_spool = alarm_spool

    def handle(self, request: dict) -> Deferred | Any:
        op = request.get("op")
        if not isinstance(op, str):
            raise RequestError("missing op")
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise RequestError(f"unknown op {op!r}")
        return handler(request)

    def op_call(self, request: dict) -> Deferred:
        """Place a call now, or ``delay`` simulated seconds from now."""
        delay = request.get("delay", 0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
            raise RequestError("delay must be a non-negative number of seconds")
        caller = request.get("caller")
        CallerParty.from_json(caller)
        if not delay:
            return self.pbx.call(caller)
        return self.pbx.clock.sleep(float(delay)).addCallback(lambda _: self.pbx.call(caller))

    def op_originate(self, request: dict) -> Deferred:
        req = originate_request(request)
        wait_end = request.get("wait", "end") == "end"

        def done(res: OriginateResult) -> Any:
            out = {"reason": res.reason, "uniqueid": res.uniqueid, "channel": res.channel}
            if res.ended is None or not wait_end:
                return out
            return res.ended.addCallback(lambda call: {**out, "call": call})

        return self.pbx.originate(req).addCallback(done)

    def op_phones(self, request: dict) -> dict:
        seed = request.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise RequestError("seed must be an integer")
        return {"phones": self.pbx.phones.update(request.get("phones"), seed)}

    def op_operators(self, request: dict) -> dict:
        return {"operators": self.pbx.queues.set_operators(request.get("operators"))}

    def op_register(self, request: dict) -> dict:
        """A seat's softphone registers: ``endpoint``, ``contact`` and ``source`` (host:port)."""
        reply = self.pbx.seats.register(_str(request, "endpoint"), request.get("contact"),
                                        request.get("source"))
        self.pbx.queues.refresh()  # an operator on that seat is rung, or no longer
        return reply

    def op_seats(self, request: dict) -> dict:
        """Each seat's stored contact and device state, and each hint's ExtensionState in
        ``context`` (default hotline-seats)."""
        context = _str(request, "context", "hotline-seats")
        seats = self.pbx.seats
        ctx = self.pbx.dialplan.contexts.get(context)
        return {
            "seats": {name: {"contact": c.address if (c := seats.contacts.get(name)) else None,
                             "device_state": self.pbx.device_state(f"PJSIP/{name}")}
                      for name in seats.endpoints},
            "hints": {exten: self.pbx.extension_state(context, exten)
                      for exten in (ctx.hints if ctx else {})},
        }

    def op_globals(self, request: dict) -> dict:
        values = request.get("globals")
        if not isinstance(values, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in values.items()
        ):
            raise RequestError("globals must map names to strings")
        for key, value in values.items():
            self.pbx.set_global(key, value)
        return {"globals": len(values)}

    def op_originated(self, request: dict) -> dict:
        """Every call placed through Originate so far: channel, context, exten, variables,
        when it was placed (``at``) and when its line was free again (``ended_at``, None while
        it rings or talks), what the called party heard (prompt paths) and pressed, and what
        the answered channel dialled from the dialplan (Dial's targets and statuses)."""
        return {"originated": [
            {**{k: v for k, v in record.items() if k != "party"},
             "heard": [entry[1] for entry in record["party"].heard] if record["party"] else [],
             "pressed": [entry[1] for entry in record["party"].pressed]
             if record["party"] else []}
            for record in self.pbx.originated]}

    def op_stats(self, request: dict) -> dict:
        return self.pbx.stats_snapshot()

    def op_channels(self, request: dict) -> dict:
        return {"channels": [
            {"name": c.name, "state": c.state.desc, "uniqueid": c.uniqueid,
             "linkedid": c.linkedid, "context": c.context, "exten": c.exten,
             "priority": c.priority, "app": c.app, "callerid": c.caller_num}
            for c in self.pbx.channels()
        ]}

    def op_alarm(self, request: dict) -> dict:
        """An alarm box call: write the spool file AlarmReceiver would leave after it."""
        if self.alarm_spool is None:
            raise RequestError("no alarm spool: start the simulator with --alarm-spool DIR")
        events = request.get("events")
        if not isinstance(events, list) or not events or not all(
            isinstance(e, dict) for e in events
        ):
            raise RequestError("events must be a non-empty list of objects")
        corrupt = request.get("corrupt")
        try:
            box = AlarmBox(_str(request, "account"), _str(request, "line"),
                           _str(request, "caller_name"))
            if corrupt is not None and corrupt not in [c.value for c in Corruption]:
                raise RequestError(f"corrupt must be one of {sorted(Corruption)}")
            spoil = None if corrupt is None else Corruption(corrupt)
            path = box.report(self.alarm_spool, [BoxEvent(
                code=str(e.get("code", "")), qualifier=e.get("qualifier", 1),
                zone=str(e.get("zone", "001")), partition=str(e.get("partition", "01")),
            ) for e in events], when=self.pbx.clock.now(), corrupt=spoil)
        except (AlarmBoxError, ValueError, OSError) as exc:
            raise RequestError(str(exc)) from None
        return {"file": path.name}

    def op_shutdown(self, request: dict) -> dict:
        self.pbx.reactor.callLater(0.05, self.stop)
        return {"stopping": True}


class ControlProtocol(LineOnlyReceiver):
    delimiter = b"\n"
    MAX_LENGTH = MAX_LINE

    def __init__(self, service: ControlService) -> None:
        self.service = service

    def lineReceived(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            request = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._reply(None, error=f"bad JSON: {exc}")
            return
        if not isinstance(request, dict):
            self._reply(None, error="request must be a JSON object")
            return
        req_id = request.get("id")
        d = maybeDeferred(self.service.handle, request)
        d.addCallbacks(lambda result: self._reply(req_id, result=result),
                       lambda failure: self._failed(req_id, failure))

    def _failed(self, req_id: Any, failure: Any) -> None:
        if failure.check(RequestError, PartyError):
            self._reply(req_id, error=str(failure.value))
        else:
            log.error("control request failed: %s", failure.getTraceback())
            self._reply(req_id, error=f"internal error: {failure.value!r}")

    def _reply(self, req_id: Any, result: Any = None, error: str | None = None) -> None:
        msg: dict[str, Any] = {"id": req_id, "ok": error is None}
        if error is None:
            msg["result"] = result
        else:
            msg["error"] = error
        if self.transport is not None and self.connected:
            self.transport.write(json.dumps(msg, ensure_ascii=False).encode("utf-8") + b"\n")

    def lineLengthExceeded(self, line: bytes) -> None:
        self._reply(None, error=f"request longer than {MAX_LINE} bytes; closing")
        if self.transport is not None:
            self.transport.loseConnection()


class ControlFactory(protocol.Factory):
    def __init__(self, service: ControlService) -> None:
        self.service = service

    def buildProtocol(self, addr: Any) -> ControlProtocol:
        return ControlProtocol(self.service)
