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


class AmiNotSent(AmiConnectionLost):
    """The action never reached Asterisk: the link was down or closing when it was due.

    Nothing was dialled; the caller may send it again once the link is back.
    """


class AmiOriginateLost(AmiConnectionLost):
    """An Originate was sent but the link dropped before its outcome.

    The call may or may not have been placed. It is never re-sent automatically:
    the caller decides whether to originate again. ``action_id`` names it, so its
    OriginateResponse can still be recognised on a later link.
    """

    def __init__(self, message: str, action_id: str = "") -> None:
        super().__init__(message)
        self.action_id = action_id


class AmiTimeout(AmiError, TimeoutError):
    """No answer within the allowed time; the link itself may still be up."""


class AmiNoResponse(AmiNotSent, AmiTimeout):
    """Asterisk never answered the action itself (not even "queued") in time: taken as not
    sent. The link is suspect; the keepalive replaces a half-open one."""


class AmiActionError(AmiError):
    """Asterisk answered an action with ``Response: Error``; ``response`` has the reply."""

    def __init__(self, message: str, response: object = None) -> None:
        super().__init__(message)
        self.response = response
