"""Outputs that do their work on a thread of their own: the event loop only hands each chord over, with
the instant it was played.

Rendering audio, writing files and printing cost from tens of microseconds to milliseconds a chord:
on the event loop, before each note, that delayed the next note of every output, the port included,
and the worker reported the delay as the cluster's (``make run``'s WAV rendered the time since the
previous note before playing each one: its songs measured timing error p99 of 10-18 ms where the
port alone gives ~2.5 ms). Here the loop pays one ``SimpleQueue.put`` per chord and output; the thread
does the work in order, given the instant each chord was played, so a file holds every note where it
was heard however far behind the thread runs. FluidSynth's calls through ctypes release the GIL, so
its rendering does not hold the loop up either.

A sink that raises is reported once and goes on being fed (a full disk may free up); a sink that
falls ``MAX_BACKLOG`` hand-offs behind has the newest dropped and reported once, rather than the
worker's memory growing without bound. Neither ever delays the other outputs. Closing hands over a
last item that makes the thread close its sink (flush, finalise its file) and end; the closer joins it.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import threading
from typing import Protocol, Sequence

import mido

from logs.rate_limit import RateLimit

logger = logging.getLogger(__name__)

# Hand-offs a sink may fall behind by (tens of MB of chords) before new ones are dropped: a console
# whose reader stopped reading must not take the worker's memory with it.
MAX_BACKLOG = 100_000
# How long closing waits for a sink to write what it was handed and finalise its file.
CLOSE_TIMEOUT = 30.0


class Sink(Protocol):
    """What an output does, on its own thread, in the order things happened; ``at`` is
    ``time.monotonic()`` when the chord was played."""

    def play(self, messages: Sequence[mido.Message], at: float) -> None: ...

    def song_ended(self, still_playing: bool, at: float) -> None:
        """A song's releases were played; ``still_playing``: another song is sounding."""

    def close(self) -> None: ...


def _ordinary_priority() -> None:
    """Put the calling thread on ordinary time-sharing if it inherited a real-time policy from the thread
    that started it (MIDI_REALTIME_PRIORITY, playback/realtime.py): rendering and writing are bulk work,
    which at real-time priority could take a core from the broker for as long as they run."""
    if os.sched_getscheduler(0) in (os.SCHED_FIFO, os.SCHED_RR):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


class ThreadedOutput:
    """Feeds ``sink`` from a thread of its own; a context manager whose exit finalises the sink and
    joins the thread. ``name`` is how the reports call it (``wav:performance.wav``)."""

    def __init__(self, sink: Sink, name: str) -> None:
        self.sink = sink
        self.name = name
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._play = sink.play
        self._thread = threading.Thread(target=self._run, name=f"output {name}", daemon=True)
        self.failures = 0
        self.dropped = 0
        self._failure_notice = RateLimit(math.inf)
        self._backlog_notice = RateLimit(math.inf)

    def __repr__(self) -> str:
        return f"<output {self.name}>"

    def hand_off(self, messages: Sequence[mido.Message], at: float) -> None:
        """Give the thread a chord played at ``at``: the only cost on the playing path."""
        if self._items.qsize() >= MAX_BACKLOG:
            self.dropped += len(messages)
            if self._backlog_notice.allow() is not None:
                logger.error("%s fell %d chords behind; what is played next is not written to it (the number "
                             "left out is given when it closes)", self.name, MAX_BACKLOG)
            return
        self._items.put((self._play, messages, at))

    def song_ended(self, still_playing: bool, at: float) -> None:
        self._items.put((self.sink.song_ended, still_playing, at))

    def _run(self) -> None:
        try:
            _ordinary_priority()
            while (item := self._items.get()) is not None:
                work, first, at = item
                try:
                    work(first, at)
                except Exception as exc:
                    self.failures += 1
                    if self._failure_notice.allow() is not None:
                        logger.error("%s failed: %s; it goes on being fed, and how often it failed is given when "
                                     "it closes", self.name, exc, exc_info=True)
        finally:
            try:
                self.sink.close()
            except Exception:
                logger.exception("%s could not be finalised", self.name)

    def __enter__(self) -> "ThreadedOutput":
        try:
            self._thread.start()
        except BaseException:
            self.sink.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._items.put(None)
        self._thread.join(CLOSE_TIMEOUT)
        if self._thread.is_alive():
            logger.error("%s was still writing %.0f s after the worker stopped playing; it may be incomplete",
                         self.name, CLOSE_TIMEOUT)
        lost = ([f"{self.failures} hand-offs failed"] if self.failures else []) + (
            [f"{self.dropped} messages were left out while it fell behind"] if self.dropped else [])
        if lost:
            logger.error("%s: %s", self.name, " and ".join(lost))
