"""Precise waits on the monotonic clock, shared by the producer's pacing and buffered playback."""
from __future__ import annotations

import asyncio
import time

# asyncio.sleep overshoots by about 1 ms (p99 ~2 ms here): sleep to this much before the deadline,
# then yield to the loop until the deadline passes, so other tasks still run while we close in.
SLEEP_MARGIN = 0.002


async def wait_until(deadline: float) -> None:
    """Return as soon as ``time.perf_counter()`` reaches ``deadline``, to well under a millisecond."""
    remaining = deadline - time.perf_counter()
    if remaining > SLEEP_MARGIN:
        await asyncio.sleep(remaining - SLEEP_MARGIN)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0)
