"""A simulator AMI server in a subprocess, shared by the tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .process import start_server, stop_server


@pytest.fixture(scope="module")
def ami_port() -> Iterator[int]:
    proc, port = start_server()
    yield port
    err = stop_server(proc)
    assert "Traceback" not in err, err
