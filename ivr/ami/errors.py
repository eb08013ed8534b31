"""Errors raised by the AMI client."""

from __future__ import annotations


class AmiError(Exception):
    """Base class of every AMI client error."""


class AmiProtocolError(AmiError):
    """The peer broke the AMI protocol (not an AMI banner, oversized message, ...)."""


class AmiAuthError(AmiError):
    """Asterisk refused the login; the credentials or manager.conf need fixing."""


class AmiConnectionLost(AmiError, ConnectionError):
    """The AMI link is down, or dropped before the action got its answer."""


class AmiOriginateLost(AmiConnectionLost):
    """An Originate was sent but the link dropped before its outcome.

    The call may or may not have been placed. It is never re-sent automatically:
    the caller decides whether to originate again.
    """


class AmiTimeout(AmiError, TimeoutError):
    """No answer within the allowed time; the link itself may still be up."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``; ``response`` has the reply."""

    def __init__(self, message: str, response: object = None) -> None:
        super().__init__(message)
        self.response = response
