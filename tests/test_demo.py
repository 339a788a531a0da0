"""make run (harness/demo.py), as a person sees it: on a terminal a progress bar per song, then a table of
every song; through a pipe, plain lines and the same table. Neither shows C libraries' noise, Faust's
start-up tables, a warning twice or the summaries' JSON."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
import uuid
from pathlib import Path

import pytest

from harness.demo import realtime_settings
from tests.jack_server import JACK_BACKEND
from tests.song_files import every_kind_timeline, write_song

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def demo_env() -> dict[str, str]:
    """No MIDI port (mido's JACK backend, no JACK server) and no sound card: the demo records performance.wav."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "MIDO_BACKEND": JACK_BACKEND,
            "JACK_DEFAULT_SERVER": f"midi_app_absent_{uuid.uuid4().hex[:8]}", "JACK_NO_START_SERVER": "1"}


@pytest.fixture
def song(tmp_path) -> tuple[Path, int]:
    score = write_song(tmp_path / "short.mid", every_kind_timeline(seconds=2.5))
    return tmp_path / "short.mid", len(score)


def run_demo_through_a_pipe(folder: Path, song: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "harness.demo", str(song)], cwd=folder, env=demo_env(),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def run_demo_on_a_terminal(folder: Path, song: Path) -> str:
    """The demo's output on a pseudo-terminal of 160 columns."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "harness.demo", str(song)], cwd=folder, env=demo_env(),
                               stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    output = bytearray()
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the demo has exited and closed its end
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(10) == 0, output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    return output.decode(errors="replace")


def table_row(text: str, song_name: str) -> list[str]:
    """The cells of the table's row for the song whose id starts with ``song_name``."""
    [row] = [line for line in text.splitlines() if line.startswith(f"│ {song_name}@")]
    return [cell.strip() for cell in row.strip().strip("│").split("│")]


def assert_quiet_and_tabulated(text: str, folder: Path, events: int) -> None:
    for noise in ("Cannot connect to server", "jack server is not running", "ALSA lib", "+Requested Subscription",
                  "ƒaµS†", "song summary {", "status:"):
        assert noise not in text
    assert text.count("no MIDI output port exists") == 1
    assert "timing error p50/p99" in text and "latency p50/p99" in text
    song_id, played, lost, duplicates, late, latency, timing_error = table_row(text, "short.mid")
    assert (played, lost, duplicates, late) == (str(events), "0", "0", "0")
    assert re.fullmatch(r"[\d.]+ / [\d.]+ ms", latency) and re.fullmatch(r"[\d.]+ / [\d.]+ ms", timing_error)
    wav = re.search(r"(\S+performance\.wav): ([\d.]+) s of audio", text)
    assert wav is not None and Path(wav[1]) == folder / "performance.wav" and float(wav[2]) > 2.5
    assert (folder / "demo-worker.log").read_text().count("song summary {") == 1


def test_through_a_pipe_the_demo_prints_plain_progress_lines_then_the_table(tmp_path, song):
    path, events = song
    text = run_demo_through_a_pipe(tmp_path, path)
    print(text)
    assert not ANSI.search(text)
    assert re.search(r"^short\.mid@\w+: +[\d.]+/[\d.]+ s, \d+/\d+ events sent$", text, re.M)
    assert re.search(rf"^done short\.mid@\w+: {events} events sent", text, re.M)
    assert_quiet_and_tabulated(text, tmp_path, events)


def test_on_a_terminal_the_demo_draws_a_progress_bar_per_song_then_the_table(tmp_path, song):
    path, events = song
    text = run_demo_on_a_terminal(tmp_path, path)
    plain = ANSI.sub("", text).replace("\r", "\n")
    print(plain)
    assert ANSI.search(text), "no terminal control sequences: the bar was not drawn"
    # The bar, full once the song is through: its description, the bar and the count of events.
    assert re.search(rf"short\.mid@\w+ +━+ +{events}/{events} events", plain)
    assert "events sent" not in plain, "plain progress lines on a terminal"
    assert_quiet_and_tabulated(plain, tmp_path, events)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to take real-time priority")
def test_where_permitted_the_demo_keeps_time_at_real_time_priority_and_a_users_own_setting_wins(monkeypatch):
    monkeypatch.delenv("MIDI_REALTIME_PRIORITY", raising=False)
    assert realtime_settings() == {"MIDI_REALTIME_PRIORITY": "10"}
    assert os.sched_getscheduler(0) == os.SCHED_OTHER, "the probe changed the demo's own thread"

    monkeypatch.setenv("MIDI_REALTIME_PRIORITY", "0")
    assert realtime_settings() == {}

    # Without CAP_SYS_NICE and with no rtprio allowance, as an ordinary user: nothing asked, nothing said.
    code = ("import resource; resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0)); "
            "from harness.demo import realtime_settings; print(realtime_settings())")
    env = {key: value for key, value in demo_env().items() if key != "MIDI_REALTIME_PRIORITY"}
    ran = subprocess.run(["setpriv", "--bounding-set", "-sys_nice", sys.executable, "-c", code], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "{}\n", "")
