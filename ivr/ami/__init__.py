"""The engine's AMI client (panoramisk 1.4 with its known defects fixed)."""

from .client import AmiClient
from .errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionLost,
    AmiError,
    AmiNoResponse,
    AmiNotSent,
    AmiOriginateLost,
    AmiProtocolError,
    AmiTimeout,
)
from .messages import ORIGINATE_REASONS, AmiMessage, AmiResponse, OriginateOutcome

__all__ = [
    "ORIGINATE_REASONS",
    "AmiActionError",
    "AmiAuthError",
    "AmiClient",
    "AmiConnectionLost",
    "AmiError",
    "AmiMessage",
    "AmiNoResponse",
    "AmiNotSent",
    "AmiOriginateLost",
    "AmiProtocolError",
    "AmiResponse",
    "AmiTimeout",
    "OriginateOutcome",
]
