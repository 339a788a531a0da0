"""What C libraries write to stderr themselves, caught so the app can say it in its own words.

ALSA writes its errors straight to file descriptor 2: on a machine without a sequencer, every time rtmidi
lists MIDI ports, ``ALSA lib seq_hw.c:466:(snd_seq_hw_open) open /dev/snd/seq failed: No such file or
directory`` landed on the worker's console between its log lines, where the app already says that no
port could be listed; FluidSynth's audio drivers do the same. ALSA's own hook for this
(``snd_lib_error_set_handler``) is a variadic C function, and a ctypes callback set there crashed
libasound (python-rtmidi 1.5.8, alsa-lib 1.2.8), so the descriptor itself is redirected while the
library is called. Other threads' writes to stderr meanwhile are caught too: it is used only around
opening outputs, for milliseconds.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

logger = logging.getLogger(__name__)


@contextmanager
def stderr_of_c_libraries() -> Iterator[list[str]]:
    """Lines that C libraries (ALSA, FluidSynth) write to stderr meanwhile, captured into the list yielded."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines += capture.read().decode(errors="replace").splitlines()


@contextmanager
def c_library_noise_at_debug() -> Iterator[None]:
    """What C libraries write to stderr meanwhile, logged at debug level instead."""
    with stderr_of_c_libraries() as lines:
        try:
            yield
        finally:
            for line in lines:
                logger.debug("%s", line)
