"""outputs/port_process.py: a port in a process of its own sends each chord at its slot, never before,
reports when it left, skips what was cancelled, and says why when it cannot play."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import mido
import pytest

from harness.processes import ROOT, WorkerProcess, run_producer
from outputs import OutputSet
from outputs.port import PortError
from outputs import port_process
from outputs.port_process import open_port_process
from tests.recording_backend import read_recording
from tests.song_files import write_song


@contextmanager
def mido_backend(name: str) -> Iterator[None]:
    previous = mido.backend
    mido.set_backend(name)
    try:
        yield
    finally:
        mido.set_backend(previous)


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """The worker's mido backend is the recording one, which the child then uses too (it inherits the
    environment, where the file is named); yields the file it writes."""
    path = tmp_path / "recording.rec"
    monkeypatch.setenv("RECORDING_BACKEND_FILE", str(path))
    with mido_backend("tests.recording_backend"):
        yield path


def note(number: int, velocity: int = 90) -> mido.Message:
    return mido.Message("note_on", note=number, velocity=velocity)


def notes_of(path) -> list[tuple[int, int, float]]:
    """(note, velocity, time.time() sent) of every note-on recorded."""
    return [(line["bytes"][1], line["bytes"][2], line["time"]) for line in read_recording(path)
            if line["bytes"][0] & 0xF0 == 0x90]


def wall(slot: float) -> float:
    """``slot`` (perf_counter) on the time.time() clock the recording uses."""
    return time.time() + (slot - time.perf_counter())


async def test_each_chord_leaves_at_its_slot_never_before_and_is_reported_as_it_left(recorded):
    port = open_port_process(None, None)
    try:
        start = time.perf_counter() + 0.05
        slots = [start, start + 0.0007, start + 0.02]
        handed = [port.play_at([note(60 + index), note(70 + index)], slot) for index, slot in enumerate(slots)]
        reported = [await played for _, played in handed]
        walls = [wall(slot) for slot in slots]
    finally:
        port.close()

    sent = notes_of(recorded)
    assert [number for number, _, _ in sent] == [60, 70, 61, 71, 62, 72]
    for index, (slot, at) in enumerate(zip(walls, reported)):
        first, second = sent[2 * index][2], sent[2 * index + 1][2]
        # Not before its slot; well within 5 ms of it (a functional bound: bench/soak.py measures).
        assert slot - 0.0002 <= first < slot + 0.005
        # A chord's notes back to back, and the report is when its last note left.
        assert second - first < 0.001
        assert abs(at[1] - second) < 0.001


async def test_a_cancelled_chord_is_never_sent_and_one_sent_at_once_goes_out_now(recorded):
    port = open_port_process(None, None)
    try:
        later = time.perf_counter() + 0.2
        number, cancelled = port.play_at([note(60)], later)
        _, kept = port.play_at([note(62)], later + 0.01)
        port.cancel(number)
        port.send(note(64))
        await kept
    finally:
        port.close()

    assert cancelled.cancelled()
    assert [number for number, _, _ in notes_of(recorded)] == [64, 62]


async def test_a_chord_whose_slot_has_passed_leaves_at_once(recorded):
    port = open_port_process(None, None)
    try:
        handed_at = time.time()
        _, played = port.play_at([note(60)], time.perf_counter() - 1.0)
        _, sent_at = await played
    finally:
        port.close()

    assert sent_at - handed_at < 0.05
    assert [number for number, _, _ in notes_of(recorded)] == [60]


async def test_a_note_the_port_refuses_fails_its_chord_with_the_reason_and_the_port_plays_on(recorded, monkeypatch,
                                                                                              caplog):
    monkeypatch.setenv("CRASHING_BACKEND_NOTE", "61")
    with mido_backend("tests.crashing_backend"):
        port = open_port_process(None, None)
    try:
        now = time.perf_counter()
        _, refused = port.play_at([note(61)], now + 0.01)
        _, played = port.play_at([note(62)], now + 0.02)
        with pytest.raises(PortError, match="test port refuses note 61"):
            await refused
        await played
        # Sent at once, nothing waits for it: the refusal is logged.
        port.send(note(61))
        await port.play_at([note(63)], time.perf_counter())[1]
    finally:
        port.close()

    assert [number for number, _, _ in notes_of(recorded)] == [62, 63]
    assert "Recorder A could not send: PortFailed: test port refuses note 61" in caplog.messages


async def test_when_the_process_dies_what_waits_fails_naming_the_port_and_so_does_what_comes_until_it_is_back(
        recorded, caplog, monkeypatch):
    monkeypatch.setattr(port_process, "RESTART_FIRST", 0.3)
    port = open_port_process(None, None)
    try:
        _, waiting = port.play_at([note(60)], time.perf_counter() + 5)
        dead = port.process
        os.kill(dead.pid, signal.SIGKILL)
        with pytest.raises(PortError, match="the process of port 'Recorder A' stopped"):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(PortError, match="Recorder A"):
            port.send(note(61))
        deadline = time.monotonic() + 20
        while port.ended is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.wait_for(port.play_at([note(62)], time.perf_counter())[1], 5)
    finally:
        port.close()

    assert port.process is not dead and dead.returncode == -signal.SIGKILL
    assert port.process.returncode == 0
    assert [number for number, _, _ in notes_of(recorded)] == [62]
    assert any(message.startswith("port 'Recorder A' plays again, sent at each slot by process ")
               for message in caplog.messages)


async def test_a_port_that_cannot_start_again_is_tried_again_later_and_a_closed_one_is_not(recorded, caplog,
                                                                                         monkeypatch):
    monkeypatch.setattr(port_process, "RESTART_FIRST", 0.05)
    port = open_port_process(None, None)
    try:
        port.play_at([note(60)], time.perf_counter())
        monkeypatch.setenv("RECORDING_BACKEND_FILE", str(recorded.parent / "no such folder" / "recording.rec"))
        os.kill(port.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while len([m for m in caplog.messages if m.startswith("could not start the process of port")]) < 2:
            assert time.monotonic() < deadline, caplog.messages
            await asyncio.sleep(0.05)
        failures = [m for m in caplog.messages if m.startswith("could not start the process of port")]
        assert failures[0].endswith("next try in 0.1 s") and failures[1].endswith("next try in 0.2 s")
    finally:
        port.close()
    await asyncio.sleep(0.5)

    assert port.restarting.cancelled()
    assert port.ended is not None


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
async def test_ctrl_c_or_a_stop_signal_to_every_process_leaves_the_port_to_the_worker_for_its_releases(
        recorded, signal_number):
    port = open_port_process(None, None)
    try:
        await port.play_at([note(60)], time.perf_counter())[1]
        os.kill(port.process.pid, signal_number)
        await asyncio.sleep(0.2)
        port.send(mido.Message("note_off", note=60))
        await port.play_at([note(62)], time.perf_counter())[1]
    finally:
        port.close()

    assert port.process.returncode == 0
    assert [line["bytes"][:2] for line in read_recording(recorded)] == [[0x90, 60], [0x80, 60], [0x90, 62]]


def test_a_port_that_cannot_open_is_refused_with_the_childs_reason(recorded):
    with pytest.raises(PortError, match=r"MIDI_OUTPUT_PORT='Yamaha' matches no port; output ports: 'Recorder A', "
                                        r"'Recorder B'"):
        open_port_process("Yamaha", None)


def test_the_port_named_is_opened(recorded):
    port = open_port_process("recorder b", None)
    port.close()

    assert port.name == "Recorder B"


class SendsItself(mido.ports.BaseOutput):
    """A backend's port that overrides ``send`` itself, as mido's rtmidi backend does."""

    def _open(self, **kwargs) -> None:
        self.sent = []

    def send(self, message) -> None:
        self.sent.append(message)


def test_the_child_sends_through_a_backends_own_send_skipping_midos_copy_and_lock_only_where_mido_wraps_it(
        recorded):
    wrapped = mido.open_output()  # the recording backend: it implements _send, mido's send wraps it
    own = SendsItself()
    bare = mido.ports.BaseOutput()  # implements neither: mido's own send, which does nothing
    try:
        assert port_process.sender_of(wrapped) == wrapped._send
        assert port_process.sender_of(own) == own.send
        assert port_process.sender_of(bare) == bare.send
        port_process.sender_of(wrapped)(note(61))
    finally:
        wrapped.close()

    assert [line["bytes"] for line in read_recording(recorded)] == [[0x90, 61, 90]]


async def test_a_song_released_meanwhile_never_sounds_what_was_handed_ahead_after_its_release(recorded):
    port = open_port_process(None, None)
    outputs = OutputSet([port])

    async def no_wait(slot: float) -> None:
        raise AssertionError("a port in a process of its own needs no wait on the loop")

    try:
        playing = asyncio.ensure_future(outputs.play_at([(note(60), "song")], time.perf_counter() + 0.1, no_wait))
        await asyncio.sleep(0.01)
        outputs.release("song")
        with pytest.raises(asyncio.CancelledError):
            await playing
        await asyncio.sleep(0.15)
    finally:
        port.close()

    recorded_bytes = [line["bytes"] for line in read_recording(recorded)]
    # The release (all notes off, all sound off: the note was tracked when handed), and never the note.
    assert [0x90, 60, 90] not in recorded_bytes
    assert [0xB0, 123, 0] in recorded_bytes and [0xB0, 120, 0] in recorded_bytes


async def test_a_release_on_a_port_whose_process_is_gone_is_one_line_saying_why(recorded, caplog, monkeypatch):
    monkeypatch.setattr(port_process, "RESTART_FIRST", 60.0)  # gone for the whole test
    port = open_port_process(None, None)
    outputs = OutputSet([port])
    try:
        handed = asyncio.ensure_future(outputs.play_at([(note(60), "song")], time.perf_counter() + 5, None))
        await asyncio.sleep(0.05)
        os.kill(port.process.pid, signal.SIGKILL)
        with pytest.raises(PortError):
            await asyncio.wait_for(handed, 5)
        caplog.clear()
        outputs.release("song")
    finally:
        port.close()

    [record] = [record for record in caplog.records if "could not release" in record.getMessage()]
    assert record.exc_info is None
    assert record.getMessage().startswith(
        "could not release the notes sounding on <port 'Recorder A' in process ")
    assert "stopped" in record.getMessage()


def port_processes_of(pid: int) -> list[int]:
    """The port processes ``pid`` started that still run (the kernel lists each thread's children)."""
    children = [int(child) for task in os.listdir(f"/proc/{pid}/task")
                for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return [child for child in children if b"child_main" in command_line(child)]


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # ended meanwhile (the start-up check's own port process ends at once)


def test_a_buffered_worker_whose_port_process_was_killed_plays_the_next_song_through_another(
        tmp_path, worker_env, recording):
    score = write_song(tmp_path / "scale.mid", [(i * 0.05, [0x90, 60 + i, 90]) for i in range(20)])
    env = {**worker_env, "MIDI_PLAYBACK": "buffered", "MIDI_PLAYOUT_DELAY": "0.2"}
    with WorkerProcess(env) as worker:
        deadline = time.monotonic() + 10
        while len(killed := port_processes_of(worker.process.pid)) != 1:
            assert time.monotonic() < deadline, f"port processes of the worker: {killed}"
            time.sleep(0.05)
        os.kill(killed[0], signal.SIGKILL)
        assert worker.wait_for(lambda line: "plays again, sent at each slot by process" in line, 20), worker.lines[-20:]
        result = run_producer([str(tmp_path / "scale.mid")], env)
        assert result.returncode == 0, result.stderr
        [summary] = worker.wait_for_summaries(1, timeout=60)
        [restarted] = port_processes_of(worker.process.pid)

    assert restarted != killed[0]
    assert (summary["events"], summary["lost"]) == (len(score), 0)
    assert [line["bytes"] for line in read_recording(recording)][:len(score)] == [data for _, data in score]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to take real-time priority")
def test_a_child_started_from_a_thread_at_ordinary_priority_takes_a_step_above_the_main_threads_priority(recorded):
    # In a process of its own, whose main thread (a worker's event loop) takes SCHED_FIFO 3 and starts the
    # port's child from a thread at ordinary priority, as a restart does from the loop's executor. The
    # child goes one step above the worker's threads, which all run at 3.
    code = """if True:
        import os, threading
        from outputs.port_process import start_child, stop_child
        from playback.realtime import ordinary_priority, take_realtime_priority
        take_realtime_priority(3)
        started = {}
        def start():
            with ordinary_priority():
                started["mine"] = os.sched_getscheduler(0)
                started["child"] = start_child("tests.recording_backend", None, None)
        thread = threading.Thread(target=start)
        thread.start()
        thread.join()
        process, _ = started["child"]
        print(started["mine"], os.sched_getscheduler(process.pid), os.sched_getparam(process.pid).sched_priority)
        stop_child(process)
    """
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(os.SCHED_OTHER), str(os.SCHED_FIFO), "4"]
