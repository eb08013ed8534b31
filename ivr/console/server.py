"""``hotline console``: the console under uvicorn, on 127.0.0.1 unless configured."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette

from ivr.config import Settings
from ivr.console.app import create_app

GRACEFUL_S = 1.0


def uvicorn_server(app: Starlette, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``app``, to serve on a socket the caller bound."""
    config = uvicorn.Config(app, log_level=log_level.lower(), access_log=False,
                            proxy_headers=False, server_header=False, lifespan="on",
                            # open event streams never end by themselves: cut them on stop
                            timeout_graceful_shutdown=GRACEFUL_S)
    return uvicorn.Server(config)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the console until interrupted."""
    sock = bind(host or settings.console.host, settings.console.port if port is None else port)
    print(f"console on http://{sock.getsockname()[0]}:{sock.getsockname()[1]}/", flush=True)
    uvicorn_server(console_app(settings), settings.log_level).run(sockets=[sock])


def console_app(settings: Settings, redis_socket: str | None = None,
                now: Callable[[], datetime] | None = None, **live: Any) -> Starlette:
    """The whole console: its pages and the live side (screens, worklist, wallboard);
    ``redis_socket`` is the embedded Redis server's socket when there is no ``redis.url``;
    ``now`` replaces the clock (the demo's); ``live`` goes to ``live_parts``."""
    from ivr.console.live_pages import live_parts

    routes, template_dirs, lifespans = live_parts(settings, redis_socket, **live)
    return create_app(settings, routes=routes, template_dirs=template_dirs,
                      lifespans=lifespans, now=now)
