"""The engine's AMI client: its own asyncio protocol, login, keepalive and reconnection."""

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
from .link import AmiLink
from .messages import ORIGINATE_REASONS, AmiMessage, AmiResponse, OriginateOutcome

__all__ = [
    "ORIGINATE_REASONS",
    "AmiActionError",
    "AmiAuthError",
    "AmiClient",
    "AmiConnectionLost",
    "AmiError",
    "AmiLink",
    "AmiMessage",
    "AmiNoResponse",
    "AmiNotSent",
    "AmiOriginateLost",
    "AmiProtocolError",
    "AmiResponse",
    "AmiTimeout",
    "OriginateOutcome",
]
