"""``hotline console``: the console under uvicorn, on 127.0.0.1 unless configured."""

from __future__ import annotations

import socket

import uvicorn
from starlette.applications import Starlette

from ivr.config import Settings
from ivr.console.app import create_app


def uvicorn_server(app: Starlette, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``app``, to serve on a socket the caller bound."""
    config = uvicorn.Config(app, log_level=log_level.lower(), access_log=False,
                            proxy_headers=False, server_header=False, lifespan="on")
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
    uvicorn_server(create_app(settings), settings.log_level).run(sockets=[sock])
