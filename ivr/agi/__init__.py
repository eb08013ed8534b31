"""Our own FastAGI server on asyncio (panoramisk's FastAGI part is not fit to serve calls)."""

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
