"""A window of allowed hours that opens far from now, for tests where a call must wait for
it: the test stacks' engine clock runs 60 times faster than the wall clock, so a window
opening 10 to 12 hours on is 10 to 12 minutes away for the test."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def hours_far_from_now(tz: str = "Asia/Shanghai") -> tuple[str, str]:
    """An hour-long window (``HH:00``, ``HH:00``) of local time opening 10 to 12 hours
    from now, within one day."""
    opens = datetime.now(ZoneInfo(tz)) + timedelta(hours=12)
    hour = opens.hour if opens.hour < 23 else 22  # opening at 22:00: 11 hours or more on
    return f"{hour:02d}:00", f"{hour + 1:02d}:00"
