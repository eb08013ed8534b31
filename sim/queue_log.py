"""app_queue's queue log: every caller's wait, one line per event, as Asterisk's logger
appends it to ``/var/log/asterisk/queue_log`` (logger.conf ``queue_log = yes``, the default).

A line is ``time|callid|queue|agent|event|data...``: the Unix time, the caller channel's
uniqueid, the queue, the member's name (``NONE`` for the caller's own events) and the event
with its fields, e.g. ``ENTERQUEUE|url|callerid|position``, ``CONNECT|holdtime|member
uniqueid|ringtime``, ``ABANDON|position|origposition|waittime``, ``EXITWITHTIMEOUT`` and
``EXITEMPTY`` with the same fields, ``COMPLETECALLER``/``COMPLETEAGENT|holdtime|calltime|
origposition``. Each line is written whole and flushed, so a reader never sees half of one
unless it reads while the PBX writes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

NO_AGENT = "NONE"


class QueueLog:
    """Appends queue events to the file at ``path``; writes nothing without one."""

    def __init__(self, path: Path | None, clock: Any) -> None:
        self.path = path
        self._clock = clock
        self._file: IO[str] | None = None

    def write(self, callid: str, queue: str, agent: str, event: str, *fields: object) -> None:
        if self.path is None:
            return
        line = "|".join([str(int(self._clock.now())), callid, queue, agent or NO_AGENT, event,
                         *(str(f).replace("|", "_").replace("\n", " ") for f in fields)])
        try:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line + "\n")
            self._file.flush()
        except OSError as exc:  # Asterisk's logger goes on without its file too
            log.warning("queue_log %s not written: %s", self.path, exc)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
