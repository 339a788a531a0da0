"""Precise waits on the monotonic clock, shared by the producer's pacing and buffered playback."""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

# asyncio.sleep overshoots by about 1 ms (p99 ~2 ms here: the loop's poll counts in whole ms), so it
# sleeps only to this much before the deadline.
SLEEP_MARGIN = 0.002
# A thread's time.sleep is exact to ~0.1 ms but handing back to the loop takes a little longer, so it
# wakes this much before the deadline and the task yields to the loop until the deadline passes.
# Yielding (rather than sleeping) through the whole margin, as before, kept a core busy 2 ms per
# note: on a 2-core machine that starved the broker and the worker, and live timing error p99 went
# from ~2.5 ms to ~3.5 ms.
FINAL_APPROACH = 0.0006
# Tasks closing in on a deadline at the same moment each hold a thread that long at most.
_precise_sleeper = ThreadPoolExecutor(max_workers=16, thread_name_prefix="precise-sleep")


def _sleep_until(deadline: float) -> None:
    # Measured when the thread starts, so a wait queued behind others still wakes on time.
    time.sleep(max(0.0, deadline - time.perf_counter()))


async def wait_until(deadline: float) -> None:
    """Return as soon as ``time.perf_counter()`` reaches ``deadline``, to well under a millisecond,
    letting other tasks run all along."""
    remaining = deadline - time.perf_counter()
    if remaining > SLEEP_MARGIN:
        await asyncio.sleep(remaining - SLEEP_MARGIN)
    if deadline - time.perf_counter() > FINAL_APPROACH:
        await asyncio.get_running_loop().run_in_executor(_precise_sleeper, _sleep_until, deadline - FINAL_APPROACH)
    while time.perf_counter() < deadline:
        await asyncio.sleep(0)
