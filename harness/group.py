"""Several workers in one group, as the tests and bench/orchestra.py run them: waiting until the group has
shared out the notes topic's partitions, and collecting the part summaries each worker logs."""
from __future__ import annotations

import re
import time

from harness.processes import SONG_SUMMARY_MARK, WorkerProcess, parse_summary

# Lines the worker logs (agents/player.py, and Faust's recovery once a rebalance is done).
ASSIGNED = re.compile(r"notes partitions assigned: (?P<partitions>[\d, ]*)")
RECOVERED = "Recovery]: Worker ready"
# Controllers a worker sends to silence a channel: the pedal up, all sound off, all notes off.
RELEASE_CONTROLS = {64, 120, 123}


def latest_assignment(worker: WorkerProcess) -> set[int] | None:
    """The notes partitions of the worker's last assignment, once its recovery after it is done; else None."""
    lines = list(worker.lines)
    for index in range(len(lines) - 1, -1, -1):
        match = ASSIGNED.search(lines[index])
        if match:
            if not any(RECOVERED in line for line in lines[index + 1:]):
                return None
            return {int(number) for number in match["partitions"].split(",") if number.strip()}
    return None


def wait_for_the_split(workers: list[WorkerProcess], partitions: int, timeout: float) -> list[set[int]]:
    """Wait until the workers' last assignments share out every partition, each worker ready after its own."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assignments = [latest_assignment(worker) for worker in workers]
        if None not in assignments and all(assignments) and sorted(
                partition for assigned in assignments for partition in assigned) == list(range(partitions)):
            return assignments
        time.sleep(0.2)
    raise TimeoutError("the group never shared out the partitions:\n" +
                       "\n".join(line for worker in workers for line in worker.lines[-30:]))


def collect_summaries(workers: list[WorkerProcess], count: int, timeout: float,
                      done=None) -> list[list[dict]]:
    """The part summaries each worker logs, until there are ``count`` in all (or ``done(found)`` says so)."""
    found: list[list[dict]] = [[] for _ in workers]
    deadline = time.monotonic() + timeout
    while not (done(found) if done else sum(map(len, found)) >= count):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sum(map(len, found))} of {count} part summaries within {timeout:.0f} s:\n" +
                               "\n".join(line for worker in workers for line in worker.lines[-30:]))
        for index, worker in enumerate(workers):
            line = worker.wait_for(lambda text: SONG_SUMMARY_MARK in text, 0.1)
            if line is not None:
                found[index].append(parse_summary(line))
    return found


def is_release(data: list[int]) -> bool:
    """A note-off, or a controller that silences: what a worker sends beyond the score when it stops."""
    is_note_off = data[0] & 0xF0 == 0x80 or (data[0] & 0xF0 == 0x90 and data[2] == 0)
    return is_note_off or (data[0] & 0xF0 == 0xB0 and data[1] in RELEASE_CONTROLS and data[2] == 0)
