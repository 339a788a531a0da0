"""Precise waits on the monotonic clock, shared by the producer's pacing and buffered playback."""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from concurrent.futures import ThreadPoolExecutor

# asyncio.sleep overshoots by about 1 ms (p99 ~2 ms here: the loop's poll counts in whole ms), so it
# sleeps only to this much before the deadline.
SLEEP_MARGIN = 0.002
# A thread's time.sleep is exact to ~0.1 ms but handing back to the loop takes a little longer (0.14 ms,
# p99 0.28 at real-time priority with two soaks on two cores), so it wakes this much before the deadline
# and the loop then watches the clock until the deadline passes. Watching through the whole 2 ms
# margin, as before, kept a core busy 2 ms per note: on a 2-core machine that starved the broker and
# the worker, and live timing error p99 went from ~2.5 ms to ~3.5 ms.
FINAL_APPROACH = 0.0006
# Tasks closing in on a deadline at the same moment each hold a thread that long at most.
_precise_sleeper = ThreadPoolExecutor(max_workers=16, thread_name_prefix="precise-sleep")


def _sleep_until(deadline: float) -> None:
    # Measured when the thread starts, so a wait queued behind others still wakes on time.
    time.sleep(max(0.0, deadline - time.perf_counter()))


async def wait_until(deadline: float) -> None:
    """Return as soon as ``time.perf_counter()`` reaches ``deadline``, to well under a millisecond,
    letting other tasks run until the final approach (at most FINAL_APPROACH).

    The final approach holds the loop: yielding to it there, as before, let another task's callback run
    in the middle of it (a record arriving: decoded, its events queued), and the wait was late by that
    callback. Measured on buffered slots in two soaks at once at real-time priority (bench/soak.py
    --together, 3 minutes): the first note of a slot left p99 0.22 ms (p99.9 0.55) after it yielding,
    0.04 ms (0.20) holding the loop."""
    remaining = deadline - time.perf_counter()
    if remaining > SLEEP_MARGIN:
        await asyncio.sleep(remaining - SLEEP_MARGIN)
    if deadline - time.perf_counter() > FINAL_APPROACH:
        await asyncio.get_running_loop().run_in_executor(_precise_sleeper, _sleep_until, deadline - FINAL_APPROACH)
    while time.perf_counter() < deadline:
        pass


class SharedWaits:
    """Precise waits for many tasks at once: those due within moments of each other (the parts of one
    chord, each a song of its own in buffered playback) are woken together, in one pass of the loop,
    by a single precise wait, instead of each task waiting in a thread of its own and watching the clock
    through its final approach, every thread's wake-up contending for the interpreter. Waited for one by one, a
    chord's notes over ten parts spread by up to 2.3 ms in one player on a quiet machine (0.3 ms
    shared), and by up to 6.7 ms in a worker of tests/test_orchestra.py (0.5 ms shared).

    Each task sleeps on the loop until SLEEP_MARGIN before its deadline, as wait_until does, then joins
    the shared wait; one that is due before the shared wait's target waits alone.
    """

    def __init__(self) -> None:
        self.waiters: list[tuple[float, int, asyncio.Future]] = []
        self.numbers = itertools.count()
        self.target: float | None = None
        self.runner: asyncio.Task | None = None

    async def until(self, deadline: float) -> None:
        """Return as soon as ``time.perf_counter()`` reaches ``deadline``, with every other task due by then."""
        remaining = deadline - time.perf_counter()
        if remaining > SLEEP_MARGIN:
            await asyncio.sleep(remaining - SLEEP_MARGIN)
        if time.perf_counter() >= deadline:
            return
        if self.target is not None and deadline < self.target:
            await wait_until(deadline)
            return
        loop = asyncio.get_running_loop()
        woken = loop.create_future()
        heapq.heappush(self.waiters, (deadline, next(self.numbers), woken))
        if self.runner is None:
            self.runner = loop.create_task(self._wake_when_due())
        await woken

    async def _wake_when_due(self) -> None:
        waiters = self.waiters
        try:
            while waiters:
                if waiters[0][2].done():  # its task was cancelled
                    heapq.heappop(waiters)
                    continue
                self.target = waiters[0][0]
                await wait_until(self.target)
                now = time.perf_counter()
                while waiters and waiters[0][0] <= now:
                    woken = heapq.heappop(waiters)[2]
                    if not woken.done():
                        woken.set_result(None)
        finally:
            self.target = None
            self.runner = None
