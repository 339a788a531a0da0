"""Real-time scheduling for the threads that keep time, when asked (``MIDI_REALTIME_PRIORITY``).

On a machine shared with the broker, a producer or anything else, a thread of ordinary priority that
wakes for a due note can wait for a core: on this project's 2-core machine, two soaks played at once
(each a worker, a producer and a broker) put 21 of 60 live minutes over 3 ms of timing error p99 and
26 of 60 buffered minutes over 1 ms, where each alone stayed within. Under ``SCHED_FIFO`` a waking
thread takes a core from every ordinary one at once. This is what audio servers do (``jackd -R``).

Linux gives a thread's policy to every thread it starts afterwards, so taking it in the main thread
before the worker's services start covers the event loop, Faust's consumer thread and the precise
waits' threads (playback/timing.py). Threads doing bulk work (an output rendering audio or writing a
file: outputs/threaded.py) go back to ordinary time-sharing as they start, so they can never starve
the broker or the producer on a small machine. The kernel keeps 5% of every second for ordinary
threads whatever real-time ones do (``/proc/sys/kernel/sched_rt_runtime_us``).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

SETTING = "MIDI_REALTIME_PRIORITY"


def take_realtime_priority(priority: int) -> tuple[bool, str]:
    """Put the calling thread, and the threads it starts from now on, on ``SCHED_FIFO`` at ``priority``
    (1-99). Returns whether it did, and the line to log (what to change when it could not)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        return False, (f"{SETTING}={priority}: not permitted to use real-time scheduling; playing at ordinary "
                       f"priority. Run as root, give the process CAP_SYS_NICE, or allow the user an rtprio of "
                       f"{priority} or more (/etc/security/limits.conf; `ulimit -r` shows the limit now)")
    except (AttributeError, OSError) as exc:  # no SCHED_FIFO on this system, or a priority it refuses
        return False, (f"{SETTING}={priority}: real-time scheduling unavailable here ({exc}); "
                       "playing at ordinary priority")
    return True, f"keeping time at real-time priority {priority} (SCHED_FIFO, {SETTING})"


def broker_priority_below(priority: int) -> int:
    """The priority an embedded broker sharing the machine takes beside time-keeping threads at ``priority``
    (0: none): real-time too, so its fetch cycle, which live notes wait for, never waits for a core, but
    below them, so a due note comes first."""
    return max(1, priority - 5) if priority else 0


@contextmanager
def ordinary_priority() -> Iterator[None]:
    """Run the block at ordinary priority (SCHED_OTHER) in the calling thread, then put its policy back:
    for bulk work between time-keeping (produce-midi reading the next song and collecting its garbage,
    30-80 ms), which at real-time priority kept cores from the workers and the broker sharing the machine."""
    policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
    if policy == os.SCHED_OTHER:
        yield
        return
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    try:
        yield
    finally:
        os.sched_setscheduler(0, policy, param)
