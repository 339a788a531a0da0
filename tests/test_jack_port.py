"""The worker playing through real rtmidi ports on a JACK server (dummy driver), read back by a real input."""
from __future__ import annotations

import os
import subprocess
import time
from contextlib import nullcontext

import mido
import pytest

from harness.processes import ROOT, WorkerProcess, faust_command, run_producer
from tests.jack_server import JACK_BACKEND, jack_env  # noqa: F401  (jack_env is a fixture)
from tests.song_files import write_song
from tests.test_end_to_end import assert_only_releases

pytestmark = pytest.mark.integration  # jackd, a broker, the worker and produce-midi

TEST_CLIENT = "midi_app_test"
TEST_INPUT = "jack_test_input"
# Messages 30 ms apart, more than one JACK cycle (21 ms with the dummy driver's defaults): JACK
# drops or repeats MIDI events of a client that misses a cycle, which happened to bursts sent within
# one cycle when the server ran asynchronously. jack_server runs it with --sync, which measured
# lossless even back to back, so the spacing is a margin that keeps this test about the app's path.
SPACING = 0.030

jack = mido.Backend(JACK_BACKEND)


def spaced_score(tmp_path) -> tuple[str, list[list[int]]]:
    """A scale of notes, each on and off 30 ms apart, with a program change and the pedal around it."""
    timeline = [(0.0, [0xC0, 5]), (SPACING, [0xB0, 64, 127])]
    for index, pitch in enumerate(range(48, 84, 2)):
        start = (2 + 2 * index) * SPACING
        timeline += [(start, [0x90, pitch, 40 + index]), (start + SPACING, [0x80, pitch, 0])]
    timeline.append((timeline[-1][0] + SPACING, [0xB0, 64, 0]))
    path = tmp_path / "spaced.mid"
    return str(path), [data for _, data in write_song(path, timeline)]


@pytest.fixture
def jack_worker_env(jack_env, broker_url) -> dict[str, str]:  # noqa: F811
    return {**jack_env, "BROKER_URL": broker_url, "MIDO_BACKEND": JACK_BACKEND, "MIDI_OUTPUT": "port"}


class ReceivedMessages:
    """Everything a real rtmidi input port receives, with the wall time it came in."""

    def __init__(self) -> None:
        self.messages: list[list[int]] = []
        self.times: list[float] = []

    def __call__(self, message: mido.Message) -> None:
        self.times.append(time.time())
        self.messages.append(message.bytes())

    def wait_for(self, count: int, timeout: float = 5.0) -> list[list[int]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # a few JACK cycles, so anything sent after the song arrives too
        return list(self.messages)


def play_song(env: dict[str, str], song: str, port_ready) -> tuple[dict, ReceivedMessages]:
    """Start a worker, connect ``port_ready()``'s input to what it opened, publish ``song``."""
    received = ReceivedMessages()
    with WorkerProcess(env) as worker:
        with port_ready() as input_port:
            input_port.callback = received
            result = run_producer([song], env)
            assert result.returncode == 0, result.stderr
            [summary] = worker.wait_for_summaries(1, timeout=30)
            received.wait_for(summary["events"])
    return summary, received


def assert_played_in_order(received: ReceivedMessages, score: list[list[int]], summary: dict) -> None:
    assert received.messages[: len(score)] == score
    assert_only_releases(received.messages[len(score):])
    assert summary["events"] == len(score) and summary["lost"] == 0


# Buffered, the port is opened in a process of the worker's own (outputs/port_process.py).
@pytest.mark.parametrize("playback", ["live", "buffered"])
def test_worker_virtual_port_plays_the_score_in_order(tmp_path, jack_worker_env, playback):
    song, score = spaced_score(tmp_path)
    env = {**jack_worker_env, "MIDI_VIRTUAL_PORT": "1", "MIDI_PLAYBACK": playback}

    def connect_to_virtual_port():
        names = [name for name in jack.get_input_names() if name.endswith(":midivirtualoutput")]
        assert len(names) == 1, f"JACK ports a test can read: {jack.get_input_names()}"
        return jack.open_input(names[0])  # not virtual: rtmidi connects it to the worker's port

    summary, received = play_song(env, song, connect_to_virtual_port)

    assert_played_in_order(received, score, summary)


def test_worker_opens_the_port_named_by_a_case_insensitive_part(tmp_path, jack_worker_env):
    song, score = spaced_score(tmp_path)
    env = {**jack_worker_env, "MIDI_OUTPUT_PORT": TEST_INPUT.upper()}
    # The worker only lists ports, so the test's virtual input must exist before it starts.
    with jack.open_input(TEST_INPUT, virtual=True, client_name=TEST_CLIENT) as test_input:
        assert jack.get_output_names() == [f"{TEST_CLIENT}:{TEST_INPUT}"]
        summary, received = play_song(env, song, lambda: nullcontext(test_input))

    assert_played_in_order(received, score, summary)


@pytest.mark.parametrize("playback", ["live", "buffered"])
def test_worker_refuses_to_start_naming_the_ports_when_the_wanted_one_is_missing(jack_worker_env, playback):
    with jack.open_input(TEST_INPUT, virtual=True, client_name=TEST_CLIENT):
        worker = subprocess.run(faust_command("worker", "-l", "info"), cwd=ROOT, text=True, timeout=60,
                                env={**os.environ, **jack_worker_env, "MIDI_OUTPUT_PORT": "no-such-port",
                                     "MIDI_PLAYBACK": playback},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    assert worker.returncode != 0, worker.stdout
    [line] = [line for line in worker.stdout.splitlines() if "MIDI_OUTPUT_PORT" in line]
    assert "'no-such-port'" in line and f"'{TEST_CLIENT}:{TEST_INPUT}'" in line, line
    assert "Traceback" not in worker.stdout, worker.stdout
