"""timing.wait_until: never early, and late by well under a millisecond."""
from __future__ import annotations

import asyncio
import random
import time

from timing import wait_until

WAITS = 200


async def test_wait_until_never_returns_early_and_is_rarely_late_by_a_millisecond():
    lateness = []
    for _ in range(WAITS):
        # Waits both shorter and longer than the sleep margin, so both of its paths are measured.
        deadline = time.perf_counter() + random.uniform(0.0005, 0.008)
        await wait_until(deadline)
        lateness.append(time.perf_counter() - deadline)

    lateness.sort()
    assert lateness[0] >= 0, f"returned {-lateness[0] * 1000:.3f} ms early"
    p99 = lateness[round(0.99 * WAITS) - 1]
    assert p99 < 0.001, f"p99 lateness {p99 * 1000:.3f} ms"


async def test_a_deadline_already_passed_returns_at_once():
    started = time.perf_counter()
    await wait_until(started - 1.0)

    assert time.perf_counter() - started < 0.01


async def test_other_tasks_keep_running_while_waiting():
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    # Most of this wait is the final approach that yields to the loop instead of sleeping.
    await wait_until(time.perf_counter() + 0.0015)
    ticker.cancel()

    assert ticks > 10
