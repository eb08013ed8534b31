"""A real write failure for tests: the process's file size limit (RLIMIT_FSIZE) at zero.

Creating, linking and renaming files still work; any write that would put a byte into a
file fails with ``EFBIG``, as writes do on a full disk (``ENOSPC``). The signal the kernel
sends for it (SIGXFSZ) is ignored meanwhile, so the write returns the error instead.
"""

from __future__ import annotations

import contextlib
import resource
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def no_file_growth() -> Iterator[None]:
    """Within the block, writing into any file fails with OSError(EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
