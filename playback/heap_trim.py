"""Freed heap memory given back to the system, once a minute, so a worker listening all day stays its size.

glibc's malloc keeps what a process frees for its next allocations and returns to the system only the
free memory at the very top of each heap (above 128 KiB), never free pages between blocks still in use.
Python takes every block over 512 bytes from malloc (records fetched, lists and dicts that grow), from
several threads, each with a heap of its own (Faust's consumer thread has one), and blocks of every size
come and go: the free space between live blocks grows. Measured (2026-11-30, soaks of the openttd songs):
the Python objects a buffered worker held stayed at 43.7 MB for 20 minutes (tracemalloc, the song
playing aside), while its anonymous memory grew 1-3 MiB an hour, all of it in malloc's heaps, three
quarters of the consumer thread's heap free after ten minutes; ``malloc_trim(0)`` gave 0.5-0.8 MiB back.
It returns every free page of every heap (``madvise``), so called now and then it keeps the worker at
the size its live objects need. It runs on the event loop (a thread of ordinary priority holding the
heaps' locks could keep the real-time loop waiting); one call took 0.1-1 ms on heaps of 17-95 MB.

Only on glibc; elsewhere (musl, macOS) there is no ``malloc_trim`` and nothing is done.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

# mallopt's parameter number for the most heaps malloc makes (glibc's malloc.h).
M_ARENA_MAX = -8

# Often enough that an hour's growth never builds up, rarely enough that its ~0.2 ms on the event loop
# falls on one live note a minute at most.
TRIM_INTERVAL = 60.0


def glibc_function(name: str, argtypes: list, restype) -> Callable | None:
    """The C library's function ``name``, or None where it has none (not glibc)."""
    try:
        function = getattr(ctypes.CDLL(ctypes.util.find_library("c") or None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = argtypes, restype
    return function


def find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    return glibc_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)


def one_heap_for_all_threads() -> bool:
    """Have every thread started from now on allocate from the main heap, not one of its own (glibc makes
    up to eight a core): a thread's heap is never trimmed down as the main one is, and Faust's consumer
    thread's grew by 2-4 MiB an hour, mostly free space in pieces too small for its next blocks. Python
    allocates under its global lock, so one heap costs no waiting. Call before the threads start;
    whether it was done."""
    mallopt = glibc_function("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)
    return mallopt is not None and mallopt(M_ARENA_MAX, 1) == 1


def anonymous_kib() -> int | None:
    """The process's anonymous resident memory (``RssAnon``, Linux), in KiB; None where unknown."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class HeapTrim:
    """Gives freed heap memory back to the system when ``due`` says so, and says what that did."""

    def __init__(self, interval: float = TRIM_INTERVAL, clock: Callable[[], float] = time.monotonic,
                 trim: Callable[[int], int] | None = None) -> None:
        self.interval = interval
        self.clock = clock
        self.trim = find_malloc_trim() if trim is None else trim
        self.trimmed_at = clock()

    @property
    def available(self) -> bool:
        return self.trim is not None

    def start_line(self) -> str:
        return (f"freed heap memory goes back to the system every {self.interval:g} s (glibc malloc_trim)"
                if self.available else "this C library has no malloc_trim: freed heap memory stays with the worker")

    def trim_if_due(self) -> str | None:
        """Trim if the interval has passed since the last time: the line to log, else None."""
        if not self.available or self.clock() - self.trimmed_at < self.interval:
            return None
        return self.trim_now()

    def trim_now(self) -> str | None:
        """Trim now (where nothing is due: the worker's start, with what it freed while starting): the
        line to log; None without malloc_trim."""
        if not self.available:
            return None
        self.trimmed_at = self.clock()
        before = anonymous_kib()
        started = time.perf_counter()
        self.trim(0)
        took_ms = (time.perf_counter() - started) * 1000.0
        after = anonymous_kib()
        if before is None or after is None:
            return f"heap trimmed in {took_ms:.2f} ms"
        return (f"heap trimmed in {took_ms:.2f} ms: {before - after} KiB given back, "
                f"anonymous memory {after / 1024:.1f} MiB")
