"""Waiting in a test for something another process or thread does, within a time."""
from __future__ import annotations

import time
from typing import Callable


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    """``condition()``'s first true value, asked every 0.1 s; TimeoutError naming ``what`` if none came
    within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"not within {timeout:.0f} s: {what}")
