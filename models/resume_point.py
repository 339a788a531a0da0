"""The value of the worker's ``played_seqs`` table: where a song resumes, and who played up to there.

A Faust Record (JSON on the table's changelog), declared as the table's value type in midi_app.py.
Workers before this one wrote the bare seq, an int: it still reads, as a point without the time or
the worker.
"""
from __future__ import annotations

from typing import Any

import faust


class ResumePoint(faust.Record, serializer="json", include_metadata=False):
    """``seq``: the highest seq of the song played (or dropped) so far; ``played_at``: the wall time
    (``time.time()``) the worker noted it, just after playing it; ``worker``: that worker, as
    ``host:pid``. The worker taking the song over measures its handover from ``played_at``."""

    seq: int
    played_at: float | None = None
    worker: str | None = None

    @classmethod
    def from_data(cls, data: Any, *, preferred_type: Any = None) -> "ResumePoint":
        if isinstance(data, int) and not isinstance(data, bool):
            return cls(seq=data)  # written by an older worker: the seq alone
        return super().from_data(data, preferred_type=preferred_type)
