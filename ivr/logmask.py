"""Masking of personal data in log records: phone numbers keep only their edges."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_PHONE = re.compile(r"(?<![\d.])(\+?\d{3})\d{4,}(\d{2})(?![\d.])")


def mask_text(text: str) -> str:
    """Replace the middle of every phone-number-like run of 9+ digits with asterisks."""
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)


_FORMATTER = logging.Formatter()


class MaskingFilter(logging.Filter):
    """Rewrites each record's message and traceback so no full phone number reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_text(_FORMATTER.formatException(record.exc_info))
        return True


def masked_logger(name: str) -> logging.Logger:
    """A logger whose own records are masked whatever handlers the application installs."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, MaskingFilter) for f in logger.filters):
        logger.addFilter(MaskingFilter())
    return logger


class JsonLines(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message and, for an
    exception, its traceback; written after the masking filter, so masked as well."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(
                    timespec="milliseconds"),
                "level": record.levelname, "logger": record.name,
                "message": record.getMessage()}
        if record.exc_info:
            line["exception"] = record.exc_text or mask_text(self.formatException(
                record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def install_masking_filter() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
