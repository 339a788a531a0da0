"""How far each song has got, for a person watching: on a terminal a progress bar per song (rich),
otherwise the plain lines produce-midi has always printed, one per song per second, which scripts and
logs read.

Used by produce-midi (songs published) and ``make run`` (songs published to the worker, from
produce-midi's plain lines). The bars are redrawn on the caller's thread, at most every
``BAR_INTERVAL``, never by a thread of rich's own: a redraw holds the GIL for a fraction of a
millisecond, and produce-midi paces its notes to well under that.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

PLAIN_INTERVAL = 1.0
BAR_INTERVAL = 0.25


@dataclass
class _Song:
    events: int
    seconds: float
    label: str
    next_report: float
    task: TaskID | None = None


class SongProgress:
    """Progress of the songs under way on ``stream``: a context manager, whose exit takes the bars down.

    ``terminal`` None asks the stream. ``keep_finished``: a finished song's bar stays, full (``make run``,
    a few songs, then a table); otherwise it gives way to its ``done`` line (produce-midi, which may play
    the same files all day)."""

    def __init__(self, stream: TextIO | None = None, *, terminal: bool | None = None, keep_finished: bool = False,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.keep_finished = keep_finished
        self.clock = clock
        self.songs: dict[str, _Song] = {}
        self.bars: Progress | None = None
        self._next_redraw = 0.0
        self._handlers: list[tuple[logging.StreamHandler, TextIO]] = []

    def __enter__(self) -> "SongProgress":
        if self.terminal:
            console = Console(file=self.stream, force_terminal=True)
            self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("events  {task.fields[seconds]}"), TimeElapsedColumn(),
                                 console=console, auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
            self.bars.start()
            self._log_above_the_bars(console)
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self.bars is not None:
                self.bars.refresh()
                self.bars.stop()
        finally:
            for handler, stream in self._handlers:
                handler.setStream(stream)
            self._handlers.clear()

    def _log_above_the_bars(self, console: Console) -> None:
        """Log records written to the stream meanwhile (a broker that went away) go above the bars,
        not through them."""
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self.stream:
                self._handlers.append((handler, handler.setStream(_Above(self))))

    def say(self, line: str) -> None:
        """A line of its own, above the bars on a terminal."""
        if self.bars is not None:
            self.bars.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=self.stream, flush=True)

    def started(self, song_id: str, events: int, seconds: float, label: str = "", line: str = "") -> None:
        """A song of ``events`` events over ``seconds`` s begins; ``line`` announces it where there are no bars."""
        self.songs[song_id] = song = _Song(events, seconds, label, self.clock() + PLAIN_INTERVAL)
        if self.bars is None:
            if line:
                self.say(line)
        else:
            song.task = self.bars.add_task(f"{song_id}{label}", total=events, seconds=f"0.0/{seconds:.1f} s")
            self._redraw(force=True)

    def advanced(self, song_id: str, events_done: int, seconds_done: float) -> None:
        """``events_done`` of the song's events are through, up to score time ``seconds_done``; cheap
        enough to be called for every record."""
        song = self.songs[song_id]
        if self.bars is not None:
            self.bars.update(song.task, completed=events_done, seconds=f"{seconds_done:.1f}/{song.seconds:.1f} s")
            self._redraw()
        elif self.clock() >= song.next_report:
            song.next_report += PLAIN_INTERVAL
            self.say(f"{song_id}: {seconds_done:7.2f}/{song.seconds:.2f} s, {events_done}/{song.events} events sent"
                     f"{song.label}")

    def finished(self, song_id: str, line: str) -> None:
        """The song is through; ``line`` says how it went."""
        song = self.songs.pop(song_id)
        if self.bars is None:
            self.say(line)
            return
        if self.keep_finished:
            self.bars.update(song.task, completed=song.events, seconds=f"{song.seconds:.1f}/{song.seconds:.1f} s")
            self._redraw(force=True)
        else:
            self.bars.remove_task(song.task)
            self._redraw(force=True)
            self.say(line)

    def _redraw(self, force: bool = False) -> None:
        now = self.clock()
        if force or now >= self._next_redraw:
            self._next_redraw = now + BAR_INTERVAL
            self.bars.refresh()


class _Above:
    """A stream for a log handler that prints each record above the bars."""

    def __init__(self, progress: SongProgress) -> None:
        self.progress = progress

    def write(self, text: str) -> None:
        if text.strip():
            self.progress.say(text.rstrip("\n"))

    def flush(self) -> None:
        pass
