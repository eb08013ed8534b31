"""Dialplan applications. Importing this package registers all of them."""

from sim.apps import (  # noqa: F401
    agi,
    audiosocket,
    basic,
    confbridge,
    dial,
    flow,
    media,
    mixmonitor,
    queue,
)
from sim.apps.registry import AppContext, application, find_app

__all__ = ["AppContext", "application", "find_app"]
