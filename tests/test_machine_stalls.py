"""The soak's watcher of the machine's own stalls (bench/machine_stalls.py), with real watchers."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from machine_stalls import MachineStalls  # noqa: E402  (the benchmarks import each other from their folder)

from tests.waiting import wait_until  # noqa: E402


def test_a_watcher_held_off_its_cpu_reports_a_stall_of_that_length():
    with MachineStalls(over_ms=2.0) as machine:
        assert len(machine.watchers) == len(os.sched_getaffinity(0))
        assert f"on each of {len(machine.watchers)} CPUs" in machine.start_line()
        started = time.time()
        # Held off its CPU as the host would hold a virtual CPU: stopped, then let go 80 ms later.
        watcher = machine.watchers[0]
        watcher.send_signal(signal.SIGSTOP)
        time.sleep(0.08)
        watcher.send_signal(signal.SIGCONT)
        wait_until(lambda: any(ms >= 60 for _, ms, _ in machine.stalls), 5.0, "a stall of 60 ms or more")
        seen = machine.between(started, time.time())
    assert seen["stalls"] >= 1 and 60 <= seen["max_ms"] < 1000, seen
    # Nothing is counted outside the stretch asked about.
    assert machine.between(started - 60, started - 30) == {"stalls": 0, "max_ms": 0.0}
    assert all(watcher.poll() is not None for watcher in machine.watchers)


def test_a_watcher_refused_real_time_priority_watches_at_ordinary_priority_and_says_so():
    """Priority 100 is above SCHED_FIFO's range (1-99), refused as a user without the right would be."""
    with MachineStalls(over_ms=2.0, priority=100) as machine:
        assert not machine.realtime
        assert "at ordinary priority (real-time not permitted" in machine.start_line()
        assert all(watcher.poll() is None for watcher in machine.watchers)  # watching all the same
    assert all(watcher.poll() is not None for watcher in machine.watchers)
