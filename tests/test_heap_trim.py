"""playback/heap_trim.py: freed heap memory given back to the system, with this machine's glibc."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from playback.heap_trim import HeapTrim, anonymous_kib, find_malloc_trim


ROOT = Path(__file__).resolve().parent.parent


def test_free_pages_between_live_blocks_go_back_to_the_system():
    assert find_malloc_trim() is not None, "this project's machines run glibc"
    heap = HeapTrim(interval=0.0)
    # Blocks over 512 bytes come from malloc's heap; every eighth stays alive, so the freed ones between
    # them cannot shrink the heap from the top: only a trim gives their pages back.
    blocks = [bytes(16 * 1024) for _ in range(4000)]
    kept = blocks[::8]
    del blocks
    before = anonymous_kib()

    line = heap.trim_if_due()

    given_back = int(re.search(r"(-?\d+) KiB given back", line).group(1))
    assert given_back > 20 * 1024, line
    assert anonymous_kib() < before - 20 * 1024
    assert len(kept) == 500


def test_it_trims_once_an_interval_and_says_so():
    now, calls = [0.0], []
    heap = HeapTrim(interval=60.0, clock=lambda: now[0], trim=calls.append)

    now[0] = 59.0
    assert heap.trim_if_due() is None
    now[0] = 60.0
    assert re.fullmatch(r"heap trimmed in \d+\.\d\d ms: -?\d+ KiB given back, anonymous memory \d+\.\d MiB",
                        heap.trim_if_due())
    now[0] = 100.0
    assert heap.trim_if_due() is None
    assert calls == [0]
    assert heap.start_line() == "freed heap memory goes back to the system every 60 s (glibc malloc_trim)"


def test_without_malloc_trim_nothing_is_done_and_the_start_line_says_so():
    now = [0.0]
    heap = HeapTrim(interval=1.0, clock=lambda: now[0])
    heap.trim = None
    now[0] = 10.0

    assert heap.trim_if_due() is None and heap.trim_now() is None
    assert heap.start_line() == "this C library has no malloc_trim: freed heap memory stays with the worker"


def test_a_trim_now_starts_the_interval_again():
    now, calls = [0.0], []
    heap = HeapTrim(interval=60.0, clock=lambda: now[0], trim=calls.append)
    now[0] = 30.0
    assert heap.trim_now().startswith("heap trimmed in ")
    now[0] = 80.0
    assert heap.trim_if_due() is None
    now[0] = 90.0
    assert heap.trim_if_due() is not None
    assert calls == [0, 0]


# A process that starts a thread allocating blocks malloc serves (over 512 bytes), then counts the heaps
# glibc's malloc_info lists.
HEAPS_AFTER_A_THREAD = """
import ctypes, sys, threading
from playback.heap_trim import one_heap_for_all_threads
if sys.argv[1] == "one":
    assert one_heap_for_all_threads()
kept = []
thread = threading.Thread(target=lambda: kept.extend(bytes(2000 + n) for n in range(2000)))
thread.start()
thread.join()
libc = ctypes.CDLL(None)
libc.open_memstream.restype = libc.fopen.restype = ctypes.c_void_p
text, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(text), ctypes.byref(size))
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(text.value.decode().count("<heap nr="))
"""


@pytest.mark.parametrize("setting, heaps", [("one", 1), ("default", 2)])
def test_with_one_heap_a_thread_allocates_from_the_main_one(setting, heaps):
    result = subprocess.run([sys.executable, "-c", HEAPS_AFTER_A_THREAD, setting], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    assert int(result.stdout) == heaps, result.stderr


# A process that frees a mapped 1 MiB block (glibc then raises its threshold above it, unless fixed),
# then counts malloc's mapped blocks (mallinfo2's hblks) while a 256 KiB block, a socket read's, is alive.
MAPPED_AFTER_A_LARGE_FREE = """
import ctypes, sys
from playback.heap_trim import large_blocks_mapped_alone
if sys.argv[1] == "fixed":
    assert large_blocks_mapped_alone()
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Mallinfo2
large = bytes(1 << 20)
del large
before = mallinfo2().hblks
read = bytes(256 * 1024)
print(mallinfo2().hblks - before)
"""


@pytest.mark.parametrize("setting, mapped", [("fixed", 1), ("default", 0)])
def test_with_large_blocks_mapped_alone_a_socket_reads_block_is_not_carved_from_the_heap(setting, mapped):
    result = subprocess.run([sys.executable, "-c", MAPPED_AFTER_A_LARGE_FREE, setting], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=True)
    assert int(result.stdout) == mapped, result.stderr
