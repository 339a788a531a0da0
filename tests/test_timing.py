"""timing.wait_until: never early, and late by well under a millisecond."""
from __future__ import annotations

import asyncio
import random
import time

from playback.timing import FINAL_APPROACH, SharedWaits, wait_until

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
    # The loop is free while the wait sleeps in a thread; only the final approach holds it.
    await wait_until(time.perf_counter() + 0.0015)
    ticker.cancel()

    assert ticks > 10


async def test_no_other_callback_runs_in_the_final_approach():
    # Yielding to the loop there let another task's callback (a record arriving, decoded and queued)
    # run in the middle of it, and the wait was late by that callback.
    ran = []
    asyncio.get_running_loop().call_soon(ran.append, "other task")
    deadline = time.perf_counter() + FINAL_APPROACH / 2  # within the final approach from the start
    await wait_until(deadline)
    assert time.perf_counter() >= deadline
    assert ran == [], "a callback ran while the wait watched the clock"
    await asyncio.sleep(0)
    assert ran == ["other task"]


async def test_waiting_leaves_the_cpu_to_others():
    # Yielding through the last 2 ms of every wait kept a core busy 2 ms per note, which on a 2-core
    # machine starved the broker and the worker beside the producer.
    cpu_started, started = time.process_time(), time.perf_counter()
    for _ in range(100):
        await wait_until(time.perf_counter() + 0.003)
    cpu_share = (time.process_time() - cpu_started) / (time.perf_counter() - started)

    assert cpu_share < 0.5, f"waiting kept {cpu_share:.0%} of a core busy"


async def test_shared_waits_wake_every_task_due_together_in_one_pass_of_the_loop_never_early():
    # The parts of one chord are songs of their own, each with its task: waited for one by one, in a
    # thread each, they resumed up to hundreds of loop passes apart; a ticker counts the passes.
    waits, passes, spreads, lateness = SharedWaits(), 0, [], []

    async def tick() -> None:
        nonlocal passes
        while True:
            passes += 1
            await asyncio.sleep(0)

    async def part(deadline: float, woke: list[int]) -> None:
        await waits.until(deadline)
        lateness.append(time.perf_counter() - deadline)
        woke.append(passes)

    ticker = asyncio.create_task(tick())
    for _ in range(20):
        deadline, woke = time.perf_counter() + 0.01, []
        await asyncio.gather(*(part(deadline, woke) for _ in range(16)))
        spreads.append(max(woke) - min(woke))
    ticker.cancel()

    # A task whose sleep on the loop overshot its deadline (a busy machine) returns by itself, late: a
    # few rounds may be spread by it. Waited for one by one, 8-9 rounds of 20 were, here.
    assert sum(spread <= 1 for spread in spreads) >= 17, f"loop passes between the first and the last task " \
                                                         f"woken: {sorted(spreads)}"
    assert min(lateness) >= 0, f"woke {-min(lateness) * 1000:.3f} ms early"
    assert waits.runner is None and waits.waiters == []


async def test_a_task_due_before_the_shared_target_is_not_kept_waiting_for_it_nor_a_cancelled_one_counted():
    waits = SharedWaits()
    now = time.perf_counter()
    later = asyncio.create_task(waits.until(now + 0.0015))
    cancelled = asyncio.create_task(waits.until(now + 0.0018))
    for _ in range(100):  # the shared wait starts
        if waits.target is not None:
            break
        await asyncio.sleep(0)
    assert waits.target == now + 0.0015
    cancelled.cancel()
    await waits.until(now + 0.0009)
    woke_at = time.perf_counter()
    await later
    await asyncio.sleep(0.002)

    assert now + 0.0009 <= woke_at < now + 0.0015, f"woke {(woke_at - now) * 1000:.3f} ms after start"
    assert cancelled.cancelled() and later.done()
    assert waits.runner is None and waits.waiters == []
