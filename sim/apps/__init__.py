"""Dialplan applications. Importing this package registers all of them."""

from sim.apps import agi, audiosocket, basic, confbridge, dial, flow, media, queue  # noqa: F401
from sim.apps.registry import AppContext, application, find_app

__all__ = ["AppContext", "application", "find_app"]
