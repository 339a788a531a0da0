"""Faust commits past an unacknowledged record at the head of a partition.

Upstream: faust-streaming, faust/transport/consumer.py, ``Consumer._new_offset``.

``_new_offset(tp)`` returns the offset to commit: one past the first run of consecutive acknowledged
offsets. It never asks where that run starts:

* nothing committed yet (``_committed_offset[tp]`` None, which is also what a committed offset of 0
  becomes in ``Consumer._seek_to_committed``): the run is taken as it is, so with record 0 delivered
  but not acknowledged and 1, 2, 3 acknowledged it returns 4;
* something committed: it only checks ``min(acked) - committed > 1``; the record at the committed
  offset itself is the next one to process, so with 5 committed, record 5 not acknowledged and 6, 7
  acknowledged it returns 8.

Committing 4 (or 8) tells the group that record 0 (or 5) is done; a worker that takes the partition
over never reads it. Records finish out of order whenever a stream acknowledges them out of order
(``noack`` + ``Event.ack()``, concurrency, buffering).

No broker: the function is called on a minimal stand-in holding the four attributes it reads.
Run: python docs/repro/commit_past_unacked_head.py   (exit 1 when the bug shows)
"""
from __future__ import annotations

import sys
from collections import defaultdict

from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

TPX = TP("repro", 0)


class ConsumerState:
    """Just the state ``Consumer._new_offset`` reads, initialised as in ``Consumer.__init__``."""

    def __init__(self, committed: int | None, acked: list[int]) -> None:
        self._acked = defaultdict(list, {TPX: list(acked)})
        self._acked_index = defaultdict(set, {TPX: set(acked)})
        self._committed_offset = defaultdict(lambda: None, {TPX: committed})
        self._gap = defaultdict(IntervalTree)


def new_offset(committed: int | None, acked: list[int]) -> int | None:
    return Consumer._new_offset(ConsumerState(committed, acked), TPX)


# (committed offset, acked offsets, offsets delivered but not acked, what may be returned)
CASES = [
    # controls: the function does its job where the head record is acknowledged or two are missing
    (None, [0, 1, 2], [], {3}),
    (5, [5, 6, 7], [], {8}),
    (5, [7, 8], [5, 6], {None, 5}),
    # the bug: one unacknowledged record at the head
    (None, [1, 2, 3], [0], {None, 0}),
    (5, [6, 7], [5], {None, 5}),
]


def main() -> int:
    failed = 0
    for committed, acked, unacked, allowed in CASES:
        got = new_offset(committed, acked)
        ok = got in allowed
        failed += not ok
        missing = f"{unacked} delivered, not acked" if unacked else "nothing missing"
        print(f"{'ok  ' if ok else 'BUG '} committed={committed!s:4} acked={acked} ({missing}):"
              f" _new_offset -> {got}, expected {' or '.join(map(str, sorted(allowed, key=str)))}")
    if failed:
        print(f"FAIL: _new_offset commits past an unacknowledged head record in {failed} of {len(CASES)} cases")
        return 1
    print("PASS: _new_offset never commits past an unacknowledged record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
