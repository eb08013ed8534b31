"""Loggers of the AMI client: phone numbers masked in messages and in tracebacks."""

from __future__ import annotations

import logging

from ivr.logmask import MaskingFilter, mask_text

_FORMATTER = logging.Formatter()


class TracebackMaskingFilter(MaskingFilter):
    """MaskingFilter that also masks the text of an attached exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        super().filter(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(_FORMATTER.formatException(record.exc_info))
        return True


def masked_logger(name: str) -> logging.Logger:
    """A logger whose records (third-party ones routed to it included) are masked."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, TracebackMaskingFilter) for f in logger.filters):
        logger.addFilter(TracebackMaskingFilter())
    return logger
