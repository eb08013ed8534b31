"""Our own FastAGI server on asyncio: one task per call, bounded reads, a safe outcome."""

from ivr.agi.errors import AgiCommandError, AgiError, AgiHangup, AgiProtocolError
from ivr.agi.reply import AgiReply
from ivr.agi.session import AgiSession

__all__ = [
    "AgiCommandError",
    "AgiError",
    "AgiHangup",
    "AgiProtocolError",
    "AgiReply",
    "AgiSession",
]
