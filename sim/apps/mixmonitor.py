"""MixMonitor(filename.extension[,options[,command]]): record the channel's call into a file.

As app_mixmonitor does, the recording is an audiohook on the channel: it goes on through a
Redirect (into a ConfBridge, say) and ends when the channel goes away. Option ``b`` records
only while the channel is bridged (to a queue member, in a conference room), so hold music is
not kept. A relative name is under Asterisk's monitor directory (``monitor/`` here); the
extension is the format (wav when absent). MIXMONITOR_FILENAME is set to the full name. The
file is written when the channel goes, into --record-dir as RECORD FILE's are: the quiet
line's hiss for the recorded time (nothing is written without --record-dir, nor for a
channel never bridged under option b).
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from sim.apps.registry import AppContext, application
from sim.dialplan.args import split_args
from sim.recording import RATE, write_recording

if TYPE_CHECKING:
    from sim.channel import Channel

log = logging.getLogger(__name__)

MONITOR_DIR = "monitor"


class MixMonitor:
    """One recording of one channel."""

    def __init__(self, chan: Channel, name: str, fmt: str, only_bridged: bool) -> None:
        self.chan = chan
        self.name = name
        self.fmt = fmt
        self.only_bridged = only_bridged
        self.seconds = 0.0
        self._since: float | None = (None if only_bridged and not chan.bridge_id
                                     else chan.pbx.clock.elapsed())

    def bridged(self, now_bridged: bool) -> None:
        if not self.only_bridged:
            return
        if now_bridged and self._since is None:
            self._since = self.chan.pbx.clock.elapsed()
        elif not now_bridged:
            self._stop()

    def close(self) -> None:
        """The channel is gone: the file, unless no audio was ever kept (option b on a call
        never bridged: app_mixmonitor opens its file with the first frame it writes)."""
        self._stop()
        if self.seconds > 0:
            write_recording(self.chan.pbx, self.name, self.fmt, round(self.seconds * RATE))

    def _stop(self) -> None:
        if self._since is not None:
            self.seconds += self.chan.pbx.clock.elapsed() - self._since
            self._since = None


@application("MixMonitor")
async def mixmonitor(ctx: AppContext, data: str) -> int:
    args = [*split_args(data), "", ""]
    filename, options = args[0].strip(), args[1]
    if not filename:
        log.warning("MixMonitor requires an argument (filename or ,t(filename) and/or "
                    "r(filename)")
        return -1
    path = PurePosixPath(filename)
    if not path.is_absolute():
        path = PurePosixPath(MONITOR_DIR) / path
    fmt = path.suffix[1:].lower() or "wav"
    base = str(path.with_suffix("")) if path.suffix else str(path)
    ctx.chan.set_var("MIXMONITOR_FILENAME", f"{base}.{fmt}")
    if not ctx.chan.hungup:
        ctx.chan.audiohooks.append(MixMonitor(ctx.chan, base, fmt, "b" in options))
    return 0
