"""The worker's heap kept to what its live objects need, so a worker listening all day stays its size.

glibc's malloc keeps what a process frees for its next allocations; it gives back to the system only
free memory at the top of a heap, never free pages between blocks still in use, and it gives each thread
a heap of its own (up to eight a core). Python takes every block over 512 bytes from malloc (records
fetched, lists and dicts that grow). Measured (2026-11-30, ten- and 25-minute soaks of the openttd songs,
a worker per mode): the Python objects a buffered worker held stayed at 43.7 MB for 20 minutes
(tracemalloc, the song playing aside) while its anonymous memory grew 1-3 MiB an hour, all of it in
malloc's heaps. Faust's consumer thread's heap grew 0.2-0.4 MiB every ten minutes, three quarters of it
free in pieces too small for its next blocks, and ``malloc_trim`` did not shrink it.

So the worker has every thread allocate from the main heap (``one_heap_for_all_threads``, before its
threads start; Python allocates under its global lock, so one heap costs no waiting), and gives that
heap's free pages back once a minute (``HeapTrim``, glibc's ``malloc_trim``, which ``madvise``s every
free page away): over an hour's soak, 48-1,760 KiB each time (median 238), in 0.05-0.63 ms (median
0.15). That runs on the event loop: a thread of ordinary priority holding the heap's lock could keep
the real-time loop waiting.

That left the main heap growing ~0.45 MiB an hour (two hours' soak, 2026-12-01: 17.00 → 17.45 → 17.92
MiB at minutes 10, 60, 120, buffered) while the blocks alive in it stayed put (heaptrack over 21
minutes: 17.05, 17.07, 17.07 MiB at the same point of each pass of the songs). What moved was free
space: asyncio reads a socket with ``recv(262144)`` (``_SelectorSocketTransport.max_size``), a 256 KiB
block shrunk to what came, ~63 times a second. glibc maps blocks that large on their own, but raises
that threshold above any mapped block freed (up to 32 MiB), so after the worker's start they were carved
from the heap, shrunk, and freed among other threads' blocks, leaving free space in pieces no trim gives
back. ``large_blocks_mapped_alone`` fixes the threshold (which turns glibc's adjustment off), so each
such read is a mapping of its own, gone when freed. Two buffered soaks side by side, the songs at four
times their speed (``-s 0.25``), mallinfo2 every 30 s for 11 minutes: by default the heap's extent grew
18.04 → 19.52 MiB and its free space 1.37 → 2.75 MiB; with the threshold fixed the extent stayed 17.77
MiB throughout, its free space 0.85-1.10 MiB. The recv costs the same (p50 14-16 µs either way).

Only on glibc; elsewhere (musl, macOS) neither function exists and nothing is done.
"""
from __future__ import annotations

import ctypes
import time
from collections.abc import Callable

# mallopt's parameter numbers (glibc's malloc.h): the most heaps malloc makes; the size from which a
# block gets a mapping of its own.
M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
# Fixed below every socket read's 256 KiB (64 KiB is what the soak that showed it ran with).
LARGE_BLOCK = 64 * 1024

# Often enough that an hour's growth never builds up, rarely enough that its ~0.2 ms on the event loop
# falls on one live note a minute at most.
TRIM_INTERVAL = 60.0


def glibc_function(name: str, argtypes: list, restype) -> Callable | None:
    """The C library's function ``name``, or None where it has none (not glibc). Looked up among what the
    process has loaded already, libc included: ``ctypes.util.find_library`` would run ldconfig (~2 ms, a
    child process) at every start."""
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = argtypes, restype
    return function


def find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    return glibc_function("malloc_trim", [ctypes.c_size_t], ctypes.c_int)


def set_malloc_option(parameter: int, value: int) -> bool:
    """glibc's ``mallopt(parameter, value)``: whether it was done (False where the C library has none)."""
    mallopt = glibc_function("mallopt", [ctypes.c_int, ctypes.c_int], ctypes.c_int)
    return mallopt is not None and mallopt(parameter, value) == 1


def one_heap_for_all_threads() -> bool:
    """Have every thread started from now on allocate from the main heap, not one of its own (the module's
    text says why). Call before the threads start; whether it was done."""
    return set_malloc_option(M_ARENA_MAX, 1)


def large_blocks_mapped_alone(threshold: int = LARGE_BLOCK) -> bool:
    """Have malloc give every block of ``threshold`` bytes or more a mapping of its own, from now on and
    whatever is freed later (the module's text says why); whether it was done."""
    return set_malloc_option(M_MMAP_THRESHOLD, threshold)


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
        if self.clock() - self.trimmed_at < self.interval:
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
