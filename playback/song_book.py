"""Every song being played: its stats, what of it was played before (resume points), the songs that
ended, and the copies that arrive again."""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Callable

from playback.resume import ResumePoints
from playback.stats import SongStats

logger = logging.getLogger(__name__)

# Songs whose end was seen, remembered so a late duplicate of them is not played as a new song.
FINISHED_SONGS_KEPT = 1000


class SongBook:
    """``arrive`` says whether an event is to be played; ``finished`` remembers the songs that ended, by
    id alone: a finished song's stats (every latency and timing offset) would keep ~0.2 MB per ten-minute
    song alive for as long as it is remembered."""

    def __init__(self, resume_points: ResumePoints, on_new_song: Callable[[], None] = lambda: None) -> None:
        self.resume_points = resume_points
        self.on_new_song = on_new_song
        self.songs: dict[str, SongStats] = {}
        self.finished: OrderedDict[str, None] = OrderedDict()
        # Copies of finished songs' events: their summaries are logged already.
        self.after_end = 0

    def arrive(self, event) -> SongStats | None:
        """Count ``event`` in its song: the song's stats when the event is to be played (or is its end),
        None when it is not (a copy, or the end of a song an earlier worker finished)."""
        stats = self.songs.get(event.song)
        if stats is None:
            if event.song in self.finished:
                self.after_end += 1
                return None
            stats = self.songs[event.song] = self._start(event.song)
        stats.last_event_at = time.monotonic()
        if event.end:
            if event.seq in stats.seen:
                # The worker this one took over from finished the song and logged its summary.
                stats.duplicates += 1
                self.remember_finished(self.songs.pop(event.song))
                return None
            stats.expected = event.seq
            return stats
        return stats if stats.arrive(event.seq) else None

    def _start(self, song: str) -> SongStats:
        stats = SongStats(song)
        resume_after = self.resume_points.get(song)
        if resume_after is not None:
            # What an earlier worker played counts as seen: arriving again, it is a duplicate and is
            # not played, and it is not counted as lost either.
            stats.seen.add_all_below(resume_after + 1)
            stats.highest_seq = resume_after
            logger.info("resuming %s after seq %d, played by an earlier worker", song, resume_after)
            handed_over = self.resume_points.taken_over(song)
            if handed_over is not None:
                stats.taken_over(handed_over.worker, handed_over.played_at)
        self.on_new_song()
        return stats

    def remember_finished(self, stats: SongStats) -> None:
        self.finished[stats.song] = None
        while len(self.finished) > FINISHED_SONGS_KEPT:
            self.finished.popitem(last=False)
