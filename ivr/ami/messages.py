"""Read-only views of AMI messages, and the outcome of an Originate."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

# Reason codes of OriginateResponse (Asterisk's AST_CONTROL_* values).
ORIGINATE_REASONS: dict[int, str] = {
    0: "failed",
    1: "hungup",
    2: "ring",
    3: "no_answer",
    4: "answered",
    5: "busy",
    8: "congestion",
}


class AmiMessage(Mapping[str, str]):
    """One event or response: headers by case-insensitive name.

    A header sent several times reads as its first value; ``get_all`` gives all.
    """

    def __init__(self, headers: list[tuple[str, str]]) -> None:
        self._pairs = headers
        self._first: dict[str, str] = {}
        for name, value in headers:
            self._first.setdefault(name.lower(), value)

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._pairs:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __len__(self) -> int:
        return len(self._first)

    def get(self, name: str, default: str = "") -> str:  # type: ignore[override]
        return self._first.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self._pairs if key.lower() == name.lower()]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._pairs!r})"


class AmiResponse(AmiMessage):
    """The direct reply to an action (``Response: Success|Error|Goodbye|...``)."""

    @property
    def response(self) -> str:
        return self.get("Response")

    @property
    def success(self) -> bool:
        return self.response in ("Success", "Follows", "Goodbye")

    @property
    def message(self) -> str:
        return self.get("Message")


@dataclass(frozen=True)
class OriginateOutcome:
    """What Asterisk reported for one ``Originate`` (from its OriginateResponse event)."""

    action_id: str
    success: bool
    reason: int
    channel: str
    uniqueid: str | None  # None when Asterisk says <unknown> (no channel was created)

    @property
    def reason_name(self) -> str:
        return ORIGINATE_REASONS.get(self.reason, f"reason_{self.reason}")

    @property
    def answered(self) -> bool:
        return self.success and self.reason == 4

    @classmethod
    def from_event(cls, event: AmiMessage) -> OriginateOutcome:
        raw_reason = event.get("Reason", "0")
        uniqueid = event.get("Uniqueid")
        return cls(
            action_id=event.action_id,
            success=event.get("Response") == "Success",
            reason=int(raw_reason) if raw_reason.lstrip("-").isdigit() else 0,
            channel=event.get("Channel"),
            uniqueid=None if uniqueid in ("", "<unknown>") else uniqueid,
        )
