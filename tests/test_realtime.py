"""playback/realtime.py: the time-keeping threads at SCHED_FIFO when asked, bulk work back at ordinary
priority, and one line saying what to change where the system refuses."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from harness.processes import ROOT, WorkerProcess
from outputs.threaded import ThreadedOutput
from playback.realtime import ordinary_priority, take_realtime_priority

# Real-time scheduling needs root or CAP_SYS_NICE; make test runs as root, as it installs Debian packages.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to take (or to drop) real-time priority")


def threads_policies(pid: int) -> list[tuple[int, int]]:
    """(policy, priority) of every thread of process ``pid``."""
    return [(os.sched_getscheduler(int(tid)), os.sched_getparam(int(tid)).sched_priority)
            for tid in os.listdir(f"/proc/{pid}/task")]


def in_a_thread(work):
    """``work()``'s result, run in a thread of its own: the policy is taken per thread, and pytest's must
    stay as it is."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", work()))
    thread.start()
    thread.join(10)
    return result["value"]


class PolicyRecordingSink:
    def __init__(self) -> None:
        self.policies = []

    def play(self, messages, at: float) -> None:
        self.policies.append(os.sched_getscheduler(0))

    def song_ended(self, still_playing: bool, at: float) -> None:
        pass

    def close(self) -> None:
        pass


@needs_root
def test_the_thread_and_the_threads_it_starts_keep_time_at_fifo_but_an_outputs_thread_does_not():
    def take_then_start_threads():
        taken, line = take_realtime_priority(7)
        child = {}
        helper = threading.Thread(target=lambda: child.setdefault("policy", os.sched_getscheduler(0)))
        helper.start()
        helper.join()
        sink = PolicyRecordingSink()
        with ThreadedOutput(sink, "recording") as output:
            output.hand_off([], 0.0)
        policy, priority = os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
        return taken, line, policy, priority, child["policy"], sink.policies

    taken, line, policy, priority, child_policy, output_policies = in_a_thread(take_then_start_threads)

    assert taken, line
    assert line == "keeping time at real-time priority 7 (SCHED_FIFO, MIDI_REALTIME_PRIORITY)"
    assert (policy, priority) == (os.SCHED_FIFO, 7)
    assert child_policy == os.SCHED_FIFO
    assert output_policies == [os.SCHED_OTHER]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # pytest's own thread untouched


@needs_root
def test_where_it_is_not_permitted_the_line_says_what_to_change_and_nothing_fails():
    # Without CAP_SYS_NICE (util-linux's setpriv takes it out of what root may hold) and with no rtprio
    # allowance (RLIMIT_RTPRIO 0): what an ordinary user running the worker has.
    code = ("import os, resource; resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0)); "
            "from playback.realtime import take_realtime_priority; "
            "print(take_realtime_priority(20)); print(os.sched_getscheduler(0) == os.SCHED_OTHER)")
    ran = subprocess.run(["setpriv", "--bounding-set", "-sys_nice", sys.executable, "-c", code], cwd=ROOT,
                         capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert ran.returncode == 0, ran.stderr
    outcome, still_ordinary = ran.stdout.splitlines()
    assert outcome.startswith("(False, 'MIDI_REALTIME_PRIORITY=20: not permitted to use real-time scheduling")
    assert "CAP_SYS_NICE" in outcome and "ulimit -r" in outcome
    assert still_ordinary == "True"


@needs_root
def test_a_worker_asked_for_it_says_so_and_its_loop_and_consumer_threads_run_at_fifo(broker_url):
    env = {"BROKER_URL": broker_url, "MIDI_OUTPUT": "null", "MIDI_REALTIME_PRIORITY": "12"}
    with WorkerProcess(env) as worker:
        pid = worker.process.pid
        fifo_threads = [tid for tid in map(int, os.listdir(f"/proc/{pid}/task"))
                        if os.sched_getscheduler(tid) == os.SCHED_FIFO]
        loop_priority = os.sched_getparam(pid).sched_priority
    said = "\n".join(worker.lines)

    assert "keeping time at real-time priority 12 (SCHED_FIFO, MIDI_REALTIME_PRIORITY)" in said, said
    assert pid in fifo_threads and loop_priority == 12
    # Faust's consumer runs in a thread of its own, started after the worker took the priority.
    assert len(fifo_threads) >= 2, fifo_threads


@needs_root
def test_bulk_work_runs_at_ordinary_priority_and_the_thread_keeps_time_again_after():
    def policies():
        take_realtime_priority(10)
        with ordinary_priority():
            during = os.sched_getscheduler(0)
        return during, os.sched_getscheduler(0), os.sched_getparam(0).sched_priority

    assert in_a_thread(policies) == (os.SCHED_OTHER, os.SCHED_FIFO, 10)


def test_at_ordinary_priority_already_nothing_changes():
    with ordinary_priority():
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
