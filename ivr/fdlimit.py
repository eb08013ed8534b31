"""Open-file limits: the engine raises its own and sizes its session cap from it.

Every call is a socket (FastAGI), some two (AudioSocket); the database pool, Redis, AMI and
log files need descriptors too. A cap above what the process may open lets a flood of idle
connections exhaust the descriptors, after which ``accept()`` fails in a loop and real calls
starve. So the cap is the configured ``max_sessions`` or what the limit leaves after a
reserve, whichever is smaller.
"""

from __future__ import annotations

import logging
import resource
import time

log = logging.getLogger(__name__)

RESERVE_MIN = 64  # descriptors kept for storage, Redis, AMI, logs and the listeners
RESERVE_SHARE = 0.125


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("open-file limit stays at %d (hard %d): %s", soft, hard, exc)
    return soft


def open_file_limit() -> int:
    """The soft RLIMIT_NOFILE in force."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def session_cap(max_sessions: int, limit: int | None = None) -> int:
    """How many sessions the process can hold with ``limit`` descriptors (default: its own)."""
    limit = open_file_limit() if limit is None else limit
    reserve = max(RESERVE_MIN, int(limit * RESERVE_SHARE))
    return max(1, min(max_sessions, limit - reserve))


class RateLimitedLog:
    """One log line per ``interval_s`` for a repeated condition, with how often it happened."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self._log = logger
        self._interval = interval_s
        self._last = float("-inf")
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._suppressed += 1
            return
        if self._suppressed:
            message += f" ({self._suppressed} more since the last report)"
        self._suppressed = 0
        self._last = now
        self._log.warning(message, *args)
