"""A MIDI output port in a process of its own, which sends each chord at the instant it is given.

Buffered playback knows each chord's slot ahead of time, and the worker used to wait for it itself: a
thread slept until just before the slot, then handed back to the event loop, which sent the chord. Every
step needed the interpreter lock, and Faust's consumer thread held it in callbacks of up to 1.2 ms: in
an hour of two soaks at once on two cores, single chords left 1-4.5 ms late, and of 39 waits over 0.5 ms
late, 22 were the sleeping thread waiting for the lock to return from ``time.sleep``, 9 its start, 7
asyncio's sleep and 1 the hand back (README, "Soak with the mock cluster at real-time priority").

Here the chord is handed over ``HAND_AHEAD`` before its slot to a child process with one thread and
nothing else to do: it sleeps in ``select`` on its pipe until just before the earliest slot, watches the
clock through the last ``FINAL_APPROACH`` (encoding the chord's messages meanwhile, to keep their path
warm), sends, and reports the instant each chord left, which the worker counts as the time it was
played. No other thread of the child can hold its interpreter lock.

The child takes the scheduling policy of the worker's event loop thread (real-time when
``MIDI_REALTIME_PRIORITY`` is set, then one step above the worker's threads), whichever thread starts
it, inherits the worker's environment, and is told the worker's mido backend. Slots are
``time.perf_counter()`` values: on Linux that is ``CLOCK_MONOTONIC``, one clock for every process of the
machine; the child's reading is compared with the worker's when it starts, and a difference refused.

The wire between the two is declared once, below: commands to the child (play a chord at an instant,
or cancel one) and reports from it (when a chord left, or why it could not).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import heapq
import itertools
import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import time
from functools import partial
from typing import Callable, Sequence

import mido
from mido.ports import BaseOutput

from outputs.port import PortError, open_port

logger = logging.getLogger(__name__)

# How long before its slot a chord is handed to the child: the worker's own wait for that moment may be
# late by its event loop's few milliseconds, which only have to end before the slot.
HAND_AHEAD = 0.010
# The child sleeps in select until this long before a slot, then watches the clock, as select's timeout
# may wake late. A probe of this loop at SCHED_FIFO 10 beside two soaks at once (2 cores, 2026-11-30):
# p99 0.01-0.02 ms late per minute, the worst of a minute 0.2-4 ms (the cores taken by other real-time
# threads).
FINAL_APPROACH = 0.0003
# How long the worker waits for the child to open its port, and to end once told.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
# Most the worker's perf_counter and the child's may differ by (it takes a few ms to read both).
CLOCK_TOLERANCE = 0.5
# A child that died is started again this long after, then twice as long after each start that fails, up
# to RESTART_MOST: a worker listening all day plays on once its port is back.
RESTART_FIRST = 1.0
RESTART_MOST = 60.0

# The wire. Command: kind, chord number, slot (perf_counter; 0 = at once), length of the MIDI bytes
# that follow (the chord's messages back to back).
COMMAND = struct.Struct("<BIdI")
PLAY, CANCEL = 1, 2
# Report: chord number, perf_counter and time.time() when its last message left, length of the error
# text that follows (0: sent).
REPORT = struct.Struct("<IddI")


def play_command(number: int, slot: float, messages: Sequence[mido.Message]) -> bytes:
    payload = b"".join(bytes(message.bytes()) for message in messages)
    return COMMAND.pack(PLAY, number, slot, len(payload)) + payload


def cancel_command(number: int) -> bytes:
    return COMMAND.pack(CANCEL, number, 0.0, 0)


def read_frames(buffer: bytearray, header: struct.Struct, length_field: int) -> list[tuple[tuple, bytes]]:
    """The whole frames at the start of ``buffer`` (header fields, payload), removed from it."""
    frames = []
    at = 0
    while len(buffer) - at >= header.size:
        fields = header.unpack_from(buffer, at)
        end = at + header.size + fields[length_field]
        if end > len(buffer):
            break
        frames.append((fields, bytes(buffer[at + header.size:end])))
        at = end
    del buffer[:at]
    return frames


# The child.

class Schedule:
    """The chords the child holds, by slot; cancelled ones are skipped when due."""

    def __init__(self) -> None:
        self.chords: list[tuple[float, int, list[mido.Message]]] = []
        self.cancelled: set[int] = set()

    def take(self, fields: tuple, payload: bytes) -> None:
        kind, number, slot, _ = fields
        if kind == PLAY:
            heapq.heappush(self.chords, (slot, number, mido.parse_all(payload)))
        elif kind == CANCEL and any(held == number for _, held, _ in self.chords):
            # (A cancel that crossed its chord's report finds nothing: kept, it would stay for good.)
            self.cancelled.add(number)

    def next_slot(self) -> float | None:
        while self.chords and self.chords[0][1] in self.cancelled:
            self.cancelled.discard(heapq.heappop(self.chords)[1])
        return self.chords[0][0] if self.chords else None

    def next_messages(self) -> list[mido.Message]:
        """The messages of the chord at :meth:`next_slot` (asked after it, which skips the cancelled)."""
        return self.chords[0][2]

    def due(self, now: float) -> list[tuple[int, list[mido.Message]]]:
        due = []
        while self.chords and self.chords[0][0] <= now:
            _, number, messages = heapq.heappop(self.chords)
            if number in self.cancelled:
                self.cancelled.discard(number)
            else:
                due.append((number, messages))
        return due


def sender_of(port: BaseOutput) -> Callable[[mido.Message], None]:
    """The quickest call that sends a message on ``port``: its backend's ``_send`` where mido's
    ``BaseOutput.send`` wraps it, else the port's ``send``.

    A workaround of mido (1.3): ``BaseOutput.send`` copies every message and takes the port's lock before
    calling ``_send``, for ports shared between threads whose callers may change a message after sending
    it. This process owns its port on one thread and parses each message for it, never to change it; the
    copy and lock cost ~0.8 µs a message, a chord's last note that much later per note before it (the
    recording backend, 2.8 against 2.0 µs a message, 2026-11-30). Backends that override ``send``
    themselves (rtmidi, without a copy) keep it. Checked once here, at the port's opening."""
    kind = type(port)
    if isinstance(port, BaseOutput) and kind.send is BaseOutput.send and kind._send is not BaseOutput._send:
        return port._send
    return port.send


def serve(port, commands: int, reports: int) -> None:
    """Play what ``commands`` (a pipe) asks on ``port`` at its slots, reporting each chord on ``reports``,
    until the worker closes the pipe."""
    send = sender_of(port)
    schedule = Schedule()
    buffer = bytearray()
    while True:
        slot = schedule.next_slot()
        timeout = None if slot is None else slot - time.perf_counter() - FINAL_APPROACH
        if timeout is None or timeout > 0:
            if select.select([commands], [], [], timeout)[0]:
                data = os.read(commands, 1 << 16)
                if not data:
                    return  # the worker closed it: what is still scheduled was cancelled with its songs
                buffer += data
                for fields, payload in read_frames(buffer, COMMAND, 3):
                    schedule.take(fields, payload)
                continue
        # Woken from a sleep, the CPU's caches hold little of this process: the first message of a chord
        # then took 50-75 µs to send and the others ~2-3 (rtmidi/JACK and the recording backend). Encoding
        # the chord's messages while the slot approaches (as sending does) brought the first to 31-43.
        # One message at a time, so the clock is read every fraction of a microsecond.
        upcoming = itertools.cycle(schedule.next_messages())
        while time.perf_counter() < slot:
            next(upcoming).bytes()
        sent = []
        for number, messages in schedule.due(time.perf_counter()):
            try:
                for message in messages:
                    send(message)
                error = b""
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}".encode()
            sent.append(REPORT.pack(number, time.perf_counter(), time.time(), len(error)) + error)
        # Reported after the whole batch is sent: a chord's parts (songs of their own) leave back to back.
        os.write(reports, b"".join(sent))


def child_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="outputs.port_process")
    parser.add_argument("--port", default=None)
    parser.add_argument("--virtual", default=None)
    parser.add_argument("--log-level", type=int, default=logging.INFO)
    parser.add_argument("--backend", default=None, help="mido backend, as MIDO_BACKEND names it")
    parser.add_argument("--scheduling", default=None, help="policy:priority to take (os.sched_setscheduler)")
    options = parser.parse_args(argv)
    # Ctrl-C in a terminal reaches the whole process group, and a service manager's stop may signal every
    # process of the worker: ended by them, this process would take the worker's releases of the notes
    # sounding with it. It ends when the worker closes its pipe instead, or dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if options.backend:
        mido.set_backend(options.backend)
    logging.basicConfig(level=options.log_level, stream=sys.stderr,
                        format="[%(asctime)s] [port process %(process)d] [%(levelname)s] %(message)s")
    logging.getLogger("outputs").setLevel(options.log_level)
    if options.scheduling:
        take_scheduling(options.scheduling)
    # The worker says which port plays, once, naming this process.
    logging.getLogger("outputs.port").setLevel(max(options.log_level, logging.WARNING))
    # The reports go out on what was stdout; anything a library prints goes to stderr instead of
    # into the middle of a report.
    reports = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        port = open_port(options.port, options.virtual)
    except PortError as exc:
        os.write(reports, json.dumps({"error": str(exc)}).encode() + b"\n")
        return
    if port is None:
        os.write(reports, json.dumps({"port": None}).encode() + b"\n")
        return
    try:
        # What exists now lives as long as the process: no collection need ever look at it again.
        gc.collect()
        gc.freeze()
        os.write(reports, json.dumps({"port": port.name, "clock": time.perf_counter()}).encode() + b"\n")
        serve(port, sys.stdin.fileno(), reports)
    finally:
        port.close()


# The worker's side.

class PortProcess:
    """A MIDI port opened in a child process (``wanted``/``virtual_name`` as outputs.port.open_port takes
    them). :meth:`play_at` hands it a chord to send at a slot; :meth:`send` sends at once (releases).
    Use :func:`open_port_process`, which says when there is no port; :meth:`close` ends the child.

    When the child dies, what waits for it fails with the reason (the songs it belonged to stop) and so
    does what comes until ``start_again`` (a callable returning a new child and its port's name) has
    started another, ``RESTART_FIRST`` later; then the port plays on."""

    def __init__(self, process: subprocess.Popen, name: str,
                 start_again: Callable[[], tuple[subprocess.Popen, str]] | None = None) -> None:
        self.process = process
        self.name = name
        self.start_again = start_again
        self.numbers = iter(range(1, 1 << 32))
        self.waiting: dict[int, asyncio.Future] = {}
        self.reports = bytearray()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ended: str | None = None
        self.closed = False
        self.restarting: asyncio.Task | None = None
        try:
            # Opened by a worker (on its event loop): its death is noticed at once, not at the next chord.
            self._watch(asyncio.get_running_loop())
        except RuntimeError:
            pass  # no loop running: watched from the first chord on

    def __repr__(self) -> str:
        return f"<port {self.name!r} in process {self.process.pid}>"

    def _command(self, data: bytes) -> None:
        if self.ended is not None:
            raise PortError(self.ended)
        try:
            os.write(self.process.stdin.fileno(), data)
        except OSError as exc:
            self._end(f"the process of port {self.name!r} is gone ({exc})")
            raise PortError(self.ended) from None

    def send(self, message: mido.Message) -> None:
        """Send ``message`` at once (its report is not waited for)."""
        self._command(play_command(next(self.numbers), 0.0, [message]))

    def play_at(self, messages: Sequence[mido.Message], slot: float) -> tuple[int, asyncio.Future]:
        """Have ``messages`` sent at ``slot`` (``time.perf_counter()``); returns the chord's number (to
        cancel it) and a future of the ``(perf_counter, time.time())`` when it left, which fails with
        PortError if the port refused it or the process ended."""
        if self.loop is None:
            self._watch(asyncio.get_running_loop())
        number = next(self.numbers)
        self._command(play_command(number, slot, messages))
        played = self.waiting[number] = self.loop.create_future()
        return number, played

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        if self.ended is None:
            loop.add_reader(self.process.stdout.fileno(), self._read_reports)

    def cancel(self, number: int) -> None:
        """Unless it already left, the chord ``number`` is not sent; its future is cancelled."""
        played = self.waiting.pop(number, None)
        if played is None:
            return
        played.cancel()
        if self.ended is None:
            self._command(cancel_command(number))

    def _read_reports(self) -> None:
        try:
            data = os.read(self.process.stdout.fileno(), 1 << 16)
        except OSError as exc:
            data, reason = b"", str(exc)
        else:
            reason = "it ended"
        if not data:
            code = self.process.poll()
            self._end(f"the process of port {self.name!r} stopped ({reason}"
                      f"{'' if code is None else f', exit code {code}'}); see the log above")
            return
        self.reports += data
        for (number, sent_clock, sent_at, _), error in read_frames(self.reports, REPORT, 3):
            played = self.waiting.pop(number, None)
            if played is None or played.done():
                if error:  # a message sent at once (a release), which nothing waits for
                    logger.error("%s could not send: %s", self.name, error.decode(errors="replace"))
                continue
            if error:
                played.set_exception(PortError(f"{self.name}: {error.decode(errors='replace')}"))
            else:
                played.set_result((sent_clock, sent_at))

    def _end(self, reason: str) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        logger.error("%s", reason)
        if self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(self.process.stdout.fileno())
        waiting, self.waiting = self.waiting, {}
        for played in waiting.values():
            if not played.done():
                played.set_exception(PortError(reason))
        if self.start_again is not None and not self.closed and self.loop is not None and not self.loop.is_closed():
            self.restarting = self.loop.create_task(self._restart())

    async def _restart(self) -> None:
        """Start another child after the last one died, retrying with a longer pause each time it fails."""
        # Ended or ending (its pipes closed): killed in case it lingers, so collecting its exit cannot wait.
        self.process.kill()
        stop_child(self.process)
        pause = RESTART_FIRST
        while True:
            await asyncio.sleep(pause)
            # A thread waits for the child to open its port (blocking, up to START_TIMEOUT s).
            starting = self.loop.run_in_executor(None, self.start_again)
            try:
                process, name = await asyncio.shield(starting)
            except asyncio.CancelledError:
                # Closed meanwhile: the child being started is ended as soon as it is up.
                starting.add_done_callback(stop_started_child)
                raise
            except Exception as exc:
                pause = min(pause * 2, RESTART_MOST)
                logger.error("could not start the process of port %r again: %s; next try in %g s",
                             self.name, exc, pause)
                continue
            self.process, self.name, self.ended = process, name, None
            self.reports.clear()
            self.loop.add_reader(process.stdout.fileno(), self._read_reports)
            logger.warning("port %r plays again, sent at each slot by process %d", name, process.pid)
            return

    def close(self) -> None:
        """Let the child send what it was given to send at once (releases), close its port and end."""
        self.closed = True
        if self.restarting is not None:
            self.restarting.cancel()
        if self.loop is not None and not self.loop.is_closed() and self.ended is None:
            self.loop.remove_reader(self.process.stdout.fileno())
        self.ended = self.ended or f"port {self.name!r} is closed"
        for played in self.waiting.values():
            played.cancel()
        self.waiting.clear()
        stop_child(self.process)


def stop_started_child(starting: asyncio.Future) -> None:
    if not starting.cancelled() and starting.exception() is None:
        stop_child(starting.result()[0])


def stop_child(process: subprocess.Popen) -> None:
    if process.stdout.closed:
        return  # stopped already
    process.stdin.close()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        logger.error("the port process %d did not end within %g s; killed", process.pid, STOP_TIMEOUT)
        process.kill()
        process.wait()
    process.stdout.close()


def open_port_process(wanted: str | None, virtual_name: str | None) -> PortProcess | None:
    """Start the child and have it open the port as outputs.port.open_port would; None when no port is
    asked for and none exists. Raises PortError when the port cannot open (the child's reason)."""
    # The worker's own mido backend, however it was chosen (MIDO_BACKEND, or mido.set_backend).
    backend = mido.backend.name + (f"/{mido.backend.api}" if mido.backend.api else "")
    started = start_child(backend, wanted, virtual_name)
    if started is None:
        return None
    process, name = started
    logger.info("playing through MIDI output port %r (sent at each slot by process %d)", name, process.pid)
    return PortProcess(process, name, start_again=partial(start_child_again, backend, wanted, virtual_name))


def start_child_again(backend: str, wanted: str | None, virtual_name: str | None) -> tuple[subprocess.Popen, str]:
    started = start_child(backend, wanted, virtual_name)
    if started is None:
        raise PortError("no MIDI output port exists any more")
    return started


def start_child(backend: str, wanted: str | None,
                virtual_name: str | None) -> tuple[subprocess.Popen, str] | None:
    """A child with its port open (the process, the port's name), or None when no port is asked for and
    none exists. Raises PortError when the port cannot open (the child's reason)."""
    # Not ``-m outputs.port_process``: that imports the package, which imports this module, first.
    command = [sys.executable, "-c", "from outputs.port_process import child_main; child_main()",
               "--log-level", str(logging.getLogger("outputs").getEffectiveLevel()), "--backend", backend,
               "--scheduling", scheduling_of_main_thread()]
    if wanted:
        command += ["--port", wanted]
    if virtual_name:
        command += ["--virtual", virtual_name]
    # The child imports outputs/ as the worker does: from the directory midi_app.py is in.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=os.getcwd())
    try:
        before = time.perf_counter()
        hello = read_hello(process)
        if "error" in hello:
            raise PortError(hello["error"])
        if hello.get("port") is None:
            stop_child(process)
            return None
        if not before - CLOCK_TOLERANCE <= hello["clock"] <= time.perf_counter() + CLOCK_TOLERANCE:
            raise PortError("the port process's perf_counter is not the worker's (not CLOCK_MONOTONIC?): "
                            "slots handed to it would be wrong")
    except BaseException:
        process.kill()
        stop_child(process)
        raise
    return process, hello["port"]


def scheduling_of_main_thread() -> str:
    """``policy:priority`` of the worker's main thread (its event loop's): a child started from another
    thread (a restart, from the loop's executor) would inherit that thread's instead."""
    main = os.getpid()  # on Linux, the main thread's id is the process's
    return f"{os.sched_getscheduler(main)}:{os.sched_getparam(main).sched_priority}"


def take_scheduling(scheduling: str) -> None:
    """In the child: the worker's main thread's policy (``scheduling_of_main_thread``), a real-time one a
    step above the worker's own threads where allowed.

    Every thread of the worker runs at its real-time priority, Faust's consumer thread too, and a
    real-time thread does not take a core from another of the same priority: in a ten-minute soak of both
    modes at once on 2 cores (2026-11-30), chords left 0.2-6 ms late, ten in a minute, waiting for the
    workers' threads. One step above, the child takes a core as it wakes; it runs ~0.3 ms a chord."""
    policy, priority = map(int, scheduling.split(":"))
    wanted = [(policy, priority)]
    if policy in (os.SCHED_FIFO, os.SCHED_RR) and priority < os.sched_get_priority_max(policy):
        wanted.insert(0, (policy, priority + 1))  # an rtprio limit may allow only the worker's own
    for policy, priority in wanted:
        if (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == (policy, priority):
            return
        try:
            os.sched_setscheduler(0, policy, os.sched_param(priority))
            return
        except OSError as exc:
            refused = exc
    logger.warning("could not take the worker's scheduling (policy %d, priority %d): %s; sending at "
                   "ordinary priority", policy, priority, refused)


def read_hello(process: subprocess.Popen) -> dict:
    """The child's first line: its port's name and clock, or why it has none."""
    line = bytearray()
    deadline = time.monotonic() + START_TIMEOUT
    stdout = process.stdout.fileno()
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([stdout], [], [], remaining)[0]:
            raise PortError(f"the port process did not open a port within {START_TIMEOUT:g} s")
        data = os.read(stdout, 1)
        if not data:
            raise PortError(f"the port process ended before opening a port (exit code {process.wait()}); "
                            "see the log above")
        line += data
    return json.loads(line)
