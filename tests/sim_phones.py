"""Simulated phones for the wire tests, whose outcome must come from the keys they press.

The simulator's phones hang up 30 simulated seconds after answering unless told otherwise
(``hangup_after``). At the tests' clock speeds that is half a real second or less, and it
runs against the engine's real work between the answer and the key (the FastAGI connection,
database writes): on a loaded machine the timer won, and a vendor who was to press 1 "hung
up mid-offer". A phone made here never hangs up by itself: its call ends when the engine's
flow ends, as the dialplan hangs up after the AGI.
"""

from __future__ import annotations

from typing import Any


def answers_and_presses(*steps: tuple[str, float], ring_s: float = 2.0) -> dict[str, Any]:
    """A phone that answers after ``ring_s`` and presses each (keys, delay) at its input
    opportunity, then stays on the line until the engine ends the call."""
    return {"answer": "answer", "ring_s": ring_s, "hangup_after": None,
            "script": [{"press": keys, "delay": delay} for keys, delay in steps]}
