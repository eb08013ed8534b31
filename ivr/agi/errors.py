"""Errors raised while serving a FastAGI session."""


class AgiError(Exception):
    """Base class of FastAGI session errors."""


class AgiProtocolError(AgiError):
    """The peer sent something that is not FastAGI (bad header, bad reply, over-long line)."""


class AgiHangup(AgiError):
    """The channel hung up, or the peer closed the connection."""


class AgiProbe(AgiHangup):
    """The peer closed the connection before sending a byte: a load balancer's health check
    (HAProxy's ``check``), not a call."""


class AgiCommandError(AgiError):
    """Asterisk rejected a command: 510 unknown command or 520 usage error."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
