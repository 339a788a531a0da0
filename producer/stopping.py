"""A stop asked for by SIGINT (Ctrl-C) or SIGTERM while produce-midi publishes: honoured at a song's edge.

Without it, a signal killed produce-midi in the middle of a song, which then never got its end
event: the worker waited MIDI_SONG_IDLE_TIMEOUT for it and logged the song as idle. With it, the
song being published ends with its end event, acknowledged, and the command says what it published.
A second signal does what the first did before: Ctrl-C interrupts at once (exit 130), SIGTERM kills.
"""
from __future__ import annotations

import asyncio
import signal
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by the first SIGINT or SIGTERM received while ``handling_signals``; ``event`` is what
    publish_song watches."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal: signal.Signals | None = None
        self._previous: dict[signal.Signals, object] = {}

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by the signal received: 128 + its number (130 for Ctrl-C)."""
        return 128 + self.signal

    @contextmanager
    def handling_signals(self) -> Iterator[StopRequest]:
        """While inside, SIGINT and SIGTERM request a stop instead of interrupting; the handlers found
        are put back on leaving."""
        loop = asyncio.get_running_loop()
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            loop.add_signal_handler(signum, self._received, signum)
        try:
            yield self
        finally:
            self._restore()

    def _restore(self) -> None:
        loop = asyncio.get_running_loop()
        for signum, handler in self._previous.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)
        self._previous.clear()

    def _received(self, signum: signal.Signals) -> None:
        if self.requested:
            # Asked again while the song's end is being acknowledged: the user will not wait for it.
            self._restore()
            signal.raise_signal(signum)
            return
        self.signal = signal.Signals(signum)
        self.event.set()
