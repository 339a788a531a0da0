"""Resuming flow that is not suspended keeps what Faust's stream queues hold.

Faust's ``FlowControlEvent.resume()`` (mode/utils/queues.py) empties the stream queues every time.
After a rebalance Faust's recovery resumes flow once to read the changelogs, then seeks the stream
partitions to their committed offsets and resumes flow again: that second resume emptied the queues
of records fetched since the seek, which nothing fetched again. A restarted worker skipped the first
record of its partition, and its next commit went past it. Resuming after a real suspension (a
rebalance starting) still clears them, as the partitions are sought again. The app's flow control
is Faust's ``App.flow_control``, a cached property.
"""
from __future__ import annotations

import faust
from mode.utils.queues import FlowControlEvent

from adjustments.tripwire import Adjustment, Touch

ADJUSTMENT = Adjustment("adjustments/flow_control.py", "queues kept on a resume of running flow", (
    Touch(faust.App, "flow_control"),
    Touch(FlowControlEvent, "is_active"),
))


class KeepQueuedOnResume(FlowControlEvent):
    """Faust's flow control of stream queues, except that resuming flow that is not suspended keeps
    what the queues hold."""

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()
