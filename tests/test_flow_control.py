"""adjustments/flow_control.py: a resume of running flow keeps what Faust's stream queues hold."""
from __future__ import annotations

from mode.utils.queues import FlowControlQueue

from adjustments.flow_control import KeepQueuedOnResume


async def test_resuming_flow_that_runs_keeps_what_the_stream_queues_hold():
    # Faust resumes flow a second time after seeking its partitions; records queued since were
    # dropped and never fetched again.
    flow = KeepQueuedOnResume()
    queue = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    flow.resume()
    queue.put_nowait("record fetched after the seek")
    flow.resume()
    assert queue.qsize() == 1

    # A rebalance suspends flow; resuming after it still empties the queues, as Faust then seeks again.
    flow.suspend()
    flow.resume()
    assert queue.empty()
