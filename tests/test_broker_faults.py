"""The broker fails under produce-midi and the worker: nothing lost, nothing played twice, nothing stuck.

Every connection runs through tests/fault_proxy.py, which the embedded broker advertises as its own
address, so the proxy can cut or blackhole them all while a song is produced and played.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import pytest

from brokers.embedded import embedded_broker, free_port
from harness.processes import WorkerProcess, run_producer
from config.settings import Settings
from tests.fault_proxy import FaultProxy
from tests.recording_backend import read_recording
from tests.song_files import write_song
from tests.test_end_to_end import assert_only_releases
from tests.topic_values import events_on_topic
from config.settings import bootstrap_servers

pytestmark = pytest.mark.integration  # brokers the tests start themselves, workers and produce-midi

UNREACHABLE_BOUND = 30.0  # what the issue promises a user of produce-midi
SONG_EVENTS = 400
EVENT_SPACING = 0.02  # 50 events/s: an 8 s song


@pytest.fixture
def song(tmp_path) -> tuple[Path, list[tuple[float, list[int]]]]:
    """Note-ons of changing pitch, one every EVENT_SPACING; returns the file and its score."""
    timeline = [(index * EVENT_SPACING, [0x90, 36 + index % 60, 80]) for index in range(SONG_EVENTS)]
    path = tmp_path / "steady.mid"
    return path, write_song(path, timeline)


def stderr_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def produce_timed(args: list[str], env: dict[str, str], echo=lambda line: None):
    started = time.monotonic()
    result = run_producer(args, env, timeout=120, echo=echo)
    return result, time.monotonic() - started


def when_line(mark: str, action: Callable[[], object]) -> Callable[[str], None]:
    """An echo callback that runs ``action`` once, at the first line containing ``mark``."""
    done = threading.Event()

    def echo(line: str) -> None:
        if mark in line and not done.is_set():
            done.set()
            action()
    return echo


def test_produce_midi_names_a_broker_nobody_listens_on_in_one_line(song, worker_env):
    address = f"127.0.0.1:{free_port()}"
    result, took = produce_timed([str(song[0])], {**worker_env, "BROKER_URL": f"kafka://{address}"})

    assert result.returncode != 0
    assert took < UNREACHABLE_BOUND
    [line] = stderr_lines(result)
    assert line.startswith("error: cannot reach the Kafka broker at " + address) and "refused" in line.lower()


def test_produce_midi_gives_up_on_a_silent_broker_in_one_line_within_its_timeout(song, worker_env):
    # Accepts connections and never answers, as a hung broker or a wrong service would.
    with FaultProxy(free_port(), free_port()) as silent:
        silent.blackhole(UNREACHABLE_BOUND * 2)
        address = f"127.0.0.1:{silent.listen_port}"
        result, took = produce_timed([str(song[0])], {**worker_env, "BROKER_URL": f"kafka://{address}"})

    assert result.returncode != 0
    assert Settings.producer_timeout <= took < UNREACHABLE_BOUND
    [line] = stderr_lines(result)
    assert line == (f"error: cannot reach the Kafka broker at {address} (BROKER_URL or -b): "
                    f"no answer within {Settings.producer_timeout:g} s")


@pytest.mark.parametrize("fault", ["vanishes", "goes silent"])
def test_produce_midi_stops_in_one_line_when_the_broker_is_lost_midsong(fault, proxied_broker, song, worker_env):
    url, proxy = proxied_broker

    def lose_broker() -> None:
        if fault == "vanishes":
            proxy.cut(refuse_for=proxy.lifetime)
        else:
            proxy.blackhole(proxy.lifetime)
    result, took = produce_timed([str(song[0])], {**worker_env, "BROKER_URL": url},
                                 echo=when_line("events sent", lose_broker))

    assert result.returncode == 2
    assert took < UNREACHABLE_BOUND
    lines = stderr_lines(result)
    assert not any("Traceback" in line or "never retrieved" in line for line in lines), result.stderr
    assert lines[-1].startswith(f"error: broker {url.removeprefix('kafka://')} stopped acknowledging")
    assert "the song is incomplete" in lines[-1]
    assert not any(line.startswith("done ") for line in lines)
    # aiokafka logs each retry, several a second; the user sees a notice every couple of seconds.
    retry_notices = [line for line in lines if "retrying for up to" in line]
    assert len(retry_notices) <= took / 2 + 2, retry_notices


@pytest.mark.parametrize("fault", ["cut", "blackhole"])
def test_a_song_survives_a_broker_fault_midway_played_whole_once_and_in_order(
        fault, proxied_broker, song, worker_env, recording):
    """cut: every connection dropped, new ones refused for 3 s (a broker restart); blackhole: nothing
    gets through for 5 s. Both are shorter than the producer's timeout, so nothing may be lost."""
    url, proxy = proxied_broker
    env = {**worker_env, "BROKER_URL": url}  # worker_env's own broker stays unused
    path, score = song
    outage = 3.0 if fault == "cut" else 5.0
    connections_cut: list[int] = []

    def break_path() -> None:
        if fault == "cut":
            connections_cut.append(proxy.cut(refuse_for=outage))
        else:
            proxy.blackhole(outage)

    with WorkerProcess(env) as worker:
        result = run_producer([str(path)], env, timeout=120, echo=when_line("events sent", break_path))
        assert result.returncode == 0, result.stderr
        [summary] = worker.wait_for_summaries(1, timeout=60)
    played = read_recording(recording)

    if fault == "cut":
        assert connections_cut and connections_cut[0] >= 2, "the producer's and the worker's connections were cut"
        assert any("retrying for up to" in line for line in stderr_lines(result))
    times = [entry["time"] for entry in played[:len(score)]]
    longest_silence = max(later - earlier for earlier, later in zip(times, times[1:]))
    assert longest_silence >= outage * 0.8, "the fault should have held the notes back"
    assert [entry["bytes"] for entry in played[:len(score)]] == [data for _, data in score]
    assert_only_releases([entry["bytes"] for entry in played[len(score):]])
    assert (summary["events"], summary["expected"]) == (len(score), len(score))
    assert (summary["lost"], summary["reordered"]) == (0, 0)
    assert summary["duplicates"] == written_again(url)


def written_again(broker_url: str) -> int:
    """How many events the notes topic holds more than once, counting each extra copy."""
    copies = Counter((song, seq) for _, song, seq in events_on_topic(broker_url))
    return sum(count - 1 for count in copies.values())


def test_an_event_the_broker_wrote_twice_is_played_once_and_counted_as_a_duplicate(
        proxied_broker, song, worker_env, recording):
    """The broker writes a record but its answer never arrives: produce-midi, without idempotence on
    this broker, sends the record again. What was written twice must be played once."""
    url, proxy = proxied_broker
    env = {**worker_env, "BROKER_URL": url}
    path, score = song

    def lose_answers() -> None:
        proxy.cut_losing_answers(after=0.3, refuse_for=1.0)
    with WorkerProcess(env) as worker:
        result = run_producer([str(path)], env, timeout=120, echo=when_line("events sent", lose_answers))
        assert result.returncode == 0, result.stderr
        [summary] = worker.wait_for_summaries(1, timeout=60)
    copies = written_again(url)
    played = read_recording(recording)

    assert copies >= 1, "the lost answers should have made produce-midi write an event again"
    assert [entry["bytes"] for entry in played[:len(score)]] == [data for _, data in score]
    assert_only_releases([entry["bytes"] for entry in played[len(score):]])
    assert (summary["events"], summary["lost"], summary["reordered"]) == (len(score), 0, 0)
    assert summary["duplicates"] == copies


def test_a_worker_started_before_its_broker_says_so_and_plays_once_it_is_up(song, worker_env, tmp_path, recording):
    port = free_port()
    env = {**worker_env, "BROKER_URL": f"kafka://127.0.0.1:{port}"}
    path, score = song
    with WorkerProcess(env, ready_timeout=None) as worker:
        line = worker.wait_for(lambda text: "cannot reach the Kafka broker at" in text, timeout=20)
        assert line is not None and f"127.0.0.1:{port}" in line
        assert worker.process.poll() is None, "the worker must keep trying, not exit"
        with embedded_broker(port, str(tmp_path / "late-broker.log")):
            assert worker.wait_for(lambda text: "Worker]: Ready" in text, timeout=30) is not None
            assert run_producer([str(path)], env, timeout=120).returncode == 0
            [summary] = worker.wait_for_summaries(1, timeout=60)
            worker.stop()
    assert [entry["bytes"] for entry in read_recording(recording)[:len(score)]] == [data for _, data in score]
    assert not any("Traceback" in text for text in worker.lines)
    assert summary["lost"] == 0


OUTAGE = 6.0
COMPLAINTS_BOUND = 6  # the first line, a reminder or two, the line saying it is back, a Faust warning


def complaints(lines: list[str]) -> list[str]:
    return [line for line in lines if "[WARNING]" in line or "[ERROR]" in line]


def assert_no_traceback(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert "Traceback" not in text and "Exception in thread" not in text, text[-3000:]


def test_a_worker_that_loses_its_broker_says_so_in_a_few_lines_and_plays_on(proxied_broker, song, worker_env,
                                                                           recording):
    url, proxy = proxied_broker
    env = {**worker_env, "BROKER_URL": url}
    address = bootstrap_servers(url)
    path, score = song
    with WorkerProcess(env) as worker:
        lines_before_cut: list[int] = []

        def cut() -> None:
            lines_before_cut.append(len(worker.lines))
            proxy.cut(refuse_for=OUTAGE)
        assert run_producer([str(path)], env, timeout=120, echo=when_line("events sent", cut)).returncode == 0
        [summary] = worker.wait_for_summaries(1, timeout=60)
        assert worker.stop() == 0
    during_and_after = worker.lines[lines_before_cut[0]:]

    assert_no_traceback(worker.lines)
    said = complaints(during_and_after)
    assert len(said) <= COMPLAINTS_BOUND, said
    assert said[0].endswith(f"cannot reach the Kafka broker at {address}, retrying: "
                            f"KafkaConnectionError: Connection at {address} closed ")
    assert any(f"the Kafka broker at {address} is reachable again" in line for line in said), said
    played = read_recording(recording)
    assert [entry["bytes"] for entry in played[:len(score)]] == [data for _, data in score]
    assert_only_releases([entry["bytes"] for entry in played[len(score):]])
    assert (summary["events"], summary["lost"], summary["reordered"]) == (len(score), 0, 0)
    # Without idempotence (this broker has none) a record in flight at the cut may be written twice.
    assert summary["duplicates"] == written_again(url)


def test_a_worker_whose_broker_died_keeps_saying_so_one_line_at_a_time_and_stops_on_sigterm(worker_env, tmp_path):
    with embedded_broker(log_path=str(tmp_path / "dying-broker.log")) as url:
        worker = WorkerProcess({**worker_env, "BROKER_URL": url}).__enter__()
    address = bootstrap_servers(url)
    try:
        # Tansu keeps its data in memory: a broker killed cannot come back with it, so the worker
        # can only go on trying until it is told to stop.
        assert worker.wait_for(lambda line: "cannot reach the Kafka broker at" in line, timeout=20) is not None
        dead_since = len(worker.lines)
        time.sleep(OUTAGE)
        said = complaints(worker.lines[dead_since:])
        assert worker.process.poll() is None, "the worker must keep trying, not exit"
    finally:
        stopped = time.monotonic()
        code = worker.stop()
    assert code == 0, "\n".join(worker.lines[-30:])
    assert time.monotonic() - stopped < 15
    assert_no_traceback(worker.lines)
    assert 1 <= len(said) <= 3, said
    assert all(f"still cannot reach the Kafka broker at {address}" in line for line in said), said
