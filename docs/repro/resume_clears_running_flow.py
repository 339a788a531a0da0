"""Resuming flow that is not suspended empties the stream queues.

Upstream: mode-streaming (faust-streaming/mode), mode/utils/queues.py, ``FlowControlEvent.resume``;
seen through Faust, whose stream and channel queues are ``FlowControlQueue(clear_on_resume=True)``
on ``app.flow_control`` (faust/streams.py, faust/channels.py).

``resume()`` clears every managed queue whether or not flow was suspended. Clearing on the way out
of a suspension is the point of ``clear_on_resume`` (a rebalance is over, partitions are sought
again, whatever was queued before is stale). But Faust resumes flow that is already running: after
a rebalance with tables, faust/tables/recovery.py ``Recovery._restart_recovery`` resumes flow to
read the changelogs, then ``Recovery.on_recovery_completed`` seeks the stream partitions to their
committed offsets and resumes again. Records fetched between the two resumes are dropped from the
queues, and nothing fetches them again: a restarted worker skipped the first record(s) of its
partition, and the next commit went past them.

No broker, no Faust app: the queue and the event alone.
Run: python docs/repro/resume_clears_running_flow.py   (exit 1 when the bug shows)
"""
from __future__ import annotations

import sys

from mode.utils.queues import FlowControlEvent, FlowControlQueue


def main() -> int:
    flow = FlowControlEvent()  # Faust's app.flow_control starts suspended
    queue: FlowControlQueue = FlowControlQueue(flow_control=flow, clear_on_resume=True)

    # Intended: leaving a suspension clears what was queued before it.
    queue.put_nowait("stale record")
    flow.suspend()
    flow.resume()
    print(f"resume() after suspend(): queue size {queue.qsize()} (expected 0: clear_on_resume)")

    # The bug: a record queued while flow is running, then resume() again without a suspend().
    queue.put_nowait("record at offset 0")
    active_before = flow.is_active()
    flow.resume()
    size = queue.qsize()
    print(f"resume() while flow already active (is_active()={active_before}): queue size {size} (expected 1)")
    if size != 1:
        print("FAIL: FlowControlEvent.resume() on running flow emptied the queue; the queued record is lost")
        return 1
    print("PASS: resuming running flow kept the queued record")
    return 0


if __name__ == "__main__":
    sys.exit(main())
