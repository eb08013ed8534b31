"""Ademco Contact ID messages: ``ACCT(4) MT(2) Q(1) EEE(3) GG(2) ZZZ(3) S(1)``.

Sixteen digits with values 1..15; the value 10 is written ``0``. Two notations exist:

* ``HEX`` (panel manuals): ``0-9`` and ``B-F`` for 11..15 (``A`` is never used);
* ``DTMF`` (what Asterisk's AlarmReceiver writes to its spool files, digit by digit as
  received): ``0-9``, ``*`` 11, ``#`` 12, ``A`` 13, ``B`` 14, ``C`` 15.

Checksum: the values of all sixteen digits add up to a multiple of 15. The message type
is ``18`` or ``98``; the qualifier is 1 (new event), 3 (restore) or 6 (still present).
Parsed fields are given in HEX notation whatever notation the input used.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = [
    "ContactIdError",
    "ContactIdMessage",
    "Notation",
    "Qualifier",
    "checksum_digit",
    "encode",
    "parse",
]

MESSAGE_LENGTH = 16
MESSAGE_TYPES = frozenset({"18", "98"})


class Notation(StrEnum):
    HEX = "hex"
    DTMF = "dtmf"


class Qualifier(IntEnum):
    NEW = 1
    RESTORE = 3
    STILL_PRESENT = 6


_SYMBOLS: dict[Notation, str] = {
    # index = digit value; index 0 is unused (a value of 0 does not exist)
    Notation.HEX: "_1234567890BCDEF",
    Notation.DTMF: "_1234567890*#ABC",
}
_VALUES: dict[Notation, dict[str, int]] = {
    notation: {ch: value for value, ch in enumerate(symbols) if value}
    for notation, symbols in _SYMBOLS.items()
}
_QUALIFIERS = {str(q.value): q for q in Qualifier}


class ContactIdError(ValueError):
    """A message that is not a valid Contact ID message; the text says why."""


@dataclass(frozen=True, slots=True)
class ContactIdMessage:
    """One validated message; all text fields in HEX notation."""

    account: str
    message_type: str
    qualifier: Qualifier
    code: str
    partition: str
    zone: str
    checksum: str

    @property
    def text(self) -> str:
        """The whole message in HEX notation."""
        return (f"{self.account}{self.message_type}{self.qualifier.value}{self.code}"
                f"{self.partition}{self.zone}{self.checksum}")

    @property
    def is_restore(self) -> bool:
        return self.qualifier is Qualifier.RESTORE


def _values(text: str, notation: Notation) -> list[int]:
    table = _VALUES[notation]
    values = []
    for position, ch in enumerate(text, start=1):
        value = table.get(ch)
        if value is None:
            allowed = "0-9 and B-F" if notation is Notation.HEX else "0-9, *, #, A, B and C"
            raise ContactIdError(
                f"invalid character {ch!r} at position {position}: "
                f"{notation.value} notation uses {allowed}"
            )
        values.append(value)
    return values


def parse(text: str, notation: Notation = Notation.DTMF) -> ContactIdMessage:
    """Validate and split one message; raise :class:`ContactIdError` on any defect."""
    if not isinstance(text, str):
        raise ContactIdError(f"message must be text, got {type(text).__name__}")
    if len(text) != MESSAGE_LENGTH:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ContactIdError(
            f"message must have {MESSAGE_LENGTH} digits, got {len(text)}: {shown!r}"
        )
    values = _values(text, notation)
    total = sum(values)
    if total % 15:
        raise ContactIdError(f"bad checksum: digit sum {total} is not a multiple of 15")
    hex_text = "".join(_SYMBOLS[Notation.HEX][v] for v in values)
    message_type = hex_text[4:6]
    if message_type not in MESSAGE_TYPES:
        raise ContactIdError(f"bad message type {message_type!r}: expected 18 or 98")
    qualifier = _QUALIFIERS.get(hex_text[6])
    if qualifier is None:
        raise ContactIdError(
            f"bad qualifier {hex_text[6]!r}: expected 1 (new), 3 (restore) or 6 (still present)"
        )
    return ContactIdMessage(
        account=hex_text[0:4],
        message_type=message_type,
        qualifier=qualifier,
        code=hex_text[7:10],
        partition=hex_text[10:12],
        zone=hex_text[12:15],
        checksum=hex_text[15],
    )


def checksum_digit(body: str, notation: Notation = Notation.HEX) -> str:
    """The 16th digit that completes the 15-digit ``body`` (written in ``notation``)."""
    if len(body) != MESSAGE_LENGTH - 1:
        raise ContactIdError(f"body must have {MESSAGE_LENGTH - 1} digits, got {len(body)}")
    remainder = sum(_values(body, notation)) % 15
    return _SYMBOLS[notation][15 - remainder]  # remainder 0 -> 15 (F / C)


def encode(
    account: str,
    code: str,
    *,
    qualifier: Qualifier = Qualifier.NEW,
    partition: str = "01",
    zone: str = "001",
    message_type: str = "18",
    notation: Notation = Notation.HEX,
) -> str:
    """A complete message (fields given in HEX notation), written in ``notation``."""
    body = f"{account}{message_type}{int(qualifier)}{code}{partition}{zone}"
    hex_text = body + checksum_digit(body, Notation.HEX)
    message = parse(hex_text, Notation.HEX)  # validates every field
    if notation is Notation.HEX:
        return message.text
    return "".join(_SYMBOLS[notation][_VALUES[Notation.HEX][ch]] for ch in hex_text)
