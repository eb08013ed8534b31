"""Fixtures for the AMI client tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ivr.ami import AmiClient
from ivr.config import AmiSettings

from .scripted import SECRET


def make_settings(port: int, **overrides: Any) -> AmiSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "username": "hotline",
        "secret": SECRET,
        "auth": "md5",
        "ping_interval_s": 5.0,
        "ping_timeout_s": 2.0,
        "reconnect_delay_s": 0.05,
    }
    values.update(overrides)
    return AmiSettings(**values)


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[..., AmiClient]]:
    """Build AmiClients for a port; every one is closed after the test."""
    clients: list[AmiClient] = []

    def build(port: int, on_connect: Any = None, **overrides: Any) -> AmiClient:
        client = AmiClient(make_settings(port, **overrides), on_connect=on_connect)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.close()
