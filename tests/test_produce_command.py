"""``faust -A midi_app produce-midi`` run as a user runs it, against the embedded broker.

What was (not) published is read back with a real aiokafka consumer.
"""
from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from models.midi_event import encode_events
from playback.stats import SongStats
from harness.processes import ROOT, faust_command, run_producer, stop_process
from producer.command import largest_record_bytes
from producer.passes import new_song_id
from producer.publish import DEFAULT_EVENTS_PER_RECORD, ensure_topic
from tests.song_files import K525_SHORT, every_kind_timeline, write_song
from tests.topic_values import records_on_topic
from config.settings import KeyBy, bootstrap_servers

TOPIC = "notes-under-test"


def bootstrap(broker_url: str) -> str:
    return bootstrap_servers(broker_url)


def read_topic(broker_url: str, topic: str = TOPIC) -> list[dict]:
    """Every event on ``topic`` (a record holds one event or an array of them), up to the end offsets."""
    events: list[dict] = []
    for record in records_on_topic(broker_url, topic):
        value = json.loads(record.value)
        events.extend(value if isinstance(value, list) else [value])
    return events


def produce(broker_url: str, *args: str, env: dict[str, str] | None = None):
    return run_producer(["-t", TOPIC, "-s", "0", *args], {"BROKER_URL": broker_url, **(env or {})}, timeout=60)


def lines_starting(stderr: str, prefix: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


def assert_exactly_the_song(records: list[dict], name: str, score: list[tuple[float, list[int]]]) -> None:
    assert {record["song"].split("@")[0] for record in records} == {name}
    assert [record["message"] for record in records[:-1]] == [data for _, data in score]
    assert records[-1]["end"] and records[-1]["seq"] == len(score)


def small_song(path: Path) -> list[tuple[float, list[int]]]:
    return write_song(path, every_kind_timeline(seconds=0.5, spacing=0.01))


def test_folder_with_a_good_and_a_broken_file_publishes_exactly_the_good_song(tmp_path, broker_url):
    folder = tmp_path / "songs"
    folder.mkdir()
    score = small_song(folder / "good.mid")
    small_song(folder / "broken.mid")
    broken = folder / "broken.mid"
    broken.write_bytes(broken.read_bytes()[:-40])  # cut inside its last track, after many good events

    result = produce(broker_url, str(folder))

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines_starting(result.stderr, "rejected:") == [
        f"rejected: {broken}: truncated: the file ends inside a chunk or a message"
    ]
    assert len(lines_starting(result.stderr, "done good.mid@")) == 1
    assert_exactly_the_song(read_topic(broker_url), "good.mid", score)


def test_every_kind_of_bad_path_gets_one_line_and_the_good_song_still_plays(tmp_path, broker_url):
    folder = tmp_path / "songs"
    folder.mkdir()
    score = small_song(folder / "good.mid")
    os.mkfifo(folder / "pipe.mid")  # reading it naively would wait forever for a writer
    (folder / "subfolder.mid").mkdir()
    (tmp_path / "readme.txt").write_text("These are my songs.\n")
    (tmp_path / "empty").mkdir()
    too_long = tmp_path / "too_long.mid"
    write_song(too_long, [(0.0, [0x90, 60, 100]), (2.0, [0x80, 60, 0])])

    result = produce(broker_url, "-m", str(tmp_path / "missing.mid"), str(folder), str(tmp_path / "readme.txt"),
                     str(tmp_path / "empty"), str(too_long), env={"MIDI_MAX_SONG_SECONDS": "1"})

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines_starting(result.stderr, "rejected:") == [
        f"rejected: {tmp_path / 'missing.mid'}: no such file or folder",
        f"rejected: {tmp_path / 'empty'}: folder has no .mid or .midi files",
        f"rejected: {folder / 'pipe.mid'}: is not a regular file (a FIFO, socket or device), so it is not read",
        f"rejected: {folder / 'subfolder.mid'}: is a folder, not a MIDI file",
        f"rejected: {tmp_path / 'readme.txt'}: not a MIDI file: it does not start with an MThd header",
        f"rejected: {too_long}: song lasts 2.0 s (0.0 h), longer than the limit of 1 s (MIDI_MAX_SONG_SECONDS); "
        "a corrupt delta time or tempo often does this",
    ]
    assert_exactly_the_song(read_topic(broker_url), "good.mid", score)


@pytest.mark.parametrize("passes", ["1", "forever"])
def test_only_bad_files_publish_nothing_and_exit_non_zero(tmp_path, broker_url, passes):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x00\x00\x00")  # 0 tracks at 0 ticks per beat

    result = produce(broker_url, "--passes", passes, str(broken))  # forever: ends, rather than spin on nothing

    assert result.returncode == 1, result.stderr
    assert lines_starting(result.stderr, "rejected:") == [f"rejected: {broken}: time division of 0 ticks per beat"]
    assert read_topic(broker_url) == []


def test_record_size_the_producer_cannot_send_is_refused_before_anything_is_sent(tmp_path, broker_url):
    song = tmp_path / "song.mid"
    score = write_song(song, [(0.0, [0x90, 60, 100]), (0.1, [0x80, 60, 0])])
    asyncio.run(ensure_topic(bootstrap(broker_url), TOPIC, 1, 1))

    refused = produce(broker_url, "--record-size", str(2 * 1024 * 1024), str(song))

    assert refused.returncode == 2, refused.stderr
    [line] = lines_starting(refused.stderr, "refused:")
    assert line.startswith("refused: --record-size 2097152: records would take up to ")
    assert read_topic(broker_url) == []

    # The largest size it names goes through the producer and the broker (Tansu took 100 MiB records).
    largest = int(re.search(r"the largest --record-size that fits is (\d+)", line).group(1))
    # 1 MiB less the widest 256 events (stamped with song_start since 2026-11-29: 991,894 here).
    assert 950_000 < largest < 1024 * 1024
    accepted = produce(broker_url, "--record-size", str(largest), str(song))

    assert accepted.returncode == 0, accepted.stderr
    records = read_topic(broker_url)
    assert_exactly_the_song(records, "song.mid", score)
    assert len(records[0]["padding"]) == largest  # the first event of each record carries the padding


def test_impossible_options_are_refused_before_anything_is_sent(tmp_path, broker_url):
    song = tmp_path / "song.mid"
    small_song(song)

    for option, value, reason in (("-s", "-1", "--speed-ratio -1.0: must be 0"),
                                  ("-s", "nan", "--speed-ratio nan: must be 0"),
                                  ("--record-size", "-5", "--record-size -5: must be 0 or more"),
                                  ("--passes", "0", "--passes 0: must be a whole number, 1 or more, or forever"),
                                  ("--passes", "-3", "--passes -3: must be a whole number"),
                                  ("--passes", "2.5", "--passes 2.5: must be a whole number")):
        result = produce(broker_url, option, value, str(song))
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        [line] = lines_starting(result.stderr, "refused:")
        assert line.startswith(f"refused: {reason}")
    assert read_topic(broker_url) == []


def events_by_song(broker_url: str) -> dict[str, list[dict]]:
    """The topic's events grouped by song id, in topic order."""
    songs: dict[str, list[dict]] = defaultdict(list)
    for event in read_topic(broker_url):
        songs[event["song"]].append(event)
    return dict(songs)


def test_passes_publish_every_good_file_that_many_times_each_a_song_of_its_own(tmp_path, broker_url):
    folder = tmp_path / "songs"
    folder.mkdir()
    score = small_song(folder / "good.mid")
    broken = folder / "broken.mid"
    small_song(broken)
    broken.write_bytes(broken.read_bytes()[:-40])

    result = produce(broker_url, "--passes", "3", str(folder))

    assert result.returncode == 1, result.stderr
    # Rejected once, not once per pass.
    assert lines_starting(result.stderr, "rejected:") == [
        f"rejected: {broken}: truncated: the file ends inside a chunk or a message"
    ]
    playing = lines_starting(result.stderr, "playing ")
    done = lines_starting(result.stderr, "done good.mid@")
    assert [line.rsplit(" ", 2)[-2:] for line in playing] == [["(pass", f"{number}/3)"] for number in (1, 2, 3)]
    assert [line.endswith(f"(pass {number}/3)") for number, line in enumerate(done, 1)] == [True] * 3
    songs = events_by_song(broker_url)
    assert len(songs) == 3
    assert {song_id for song_id in songs} == {line.split()[1].rstrip(":") for line in done}
    for events in songs.values():
        assert_exactly_the_song(events, "good.mid", score)


class ProducerProcess:
    """produce-midi running in a child process, its stderr lines kept for reading while it runs."""

    def __init__(self, broker_url: str, *args: str) -> None:
        self.process = subprocess.Popen(faust_command("produce-midi", "-t", TOPIC, *args), cwd=ROOT,
                                        env={**os.environ, "BROKER_URL": broker_url}, text=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._unread: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))
            self._unread.put(line)
        self._unread.put(None)

    def wait_for_line(self, prefix: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._unread.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            if line.startswith(prefix):
                return line.rstrip("\n")
        raise AssertionError(f"no line starting {prefix!r}; produce-midi said:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        stop_process(self.process, timeout=1.0, signum=signal.SIGKILL)


@pytest.mark.parametrize("signum, passes, exit_code", [
    pytest.param(signal.SIGTERM, "forever", 0, id="SIGTERM-forever"),  # how a standing canary ends: no failure
    pytest.param(signal.SIGINT, "5", 130, id="SIGINT-5-passes"),  # Ctrl-C before they were done: interrupted
])
def test_a_stop_ends_the_song_being_published_with_an_end_event_counting_what_was_sent(
        tmp_path, broker_url, signum, passes, exit_code):
    song = tmp_path / "song.mid"
    score = write_song(song, every_kind_timeline(seconds=1.0, spacing=0.01))  # 1 s at -s 1
    producer = ProducerProcess(broker_url, "--passes", passes, "-s", "1", str(song))
    try:
        producer.wait_for_line("playing ")
        producer.wait_for_line("playing ")  # the second pass, as a canary's stop would find it
        time.sleep(0.4)
        signalled = time.monotonic()
        producer.process.send_signal(signum)
        producer.process.wait(timeout=5)
        took = time.monotonic() - signalled
    finally:
        producer.stop()
    stderr = "\n".join(producer.lines)

    assert producer.process.returncode == exit_code, stderr
    assert took < 1.5, f"took {took:.2f} s to stop"
    assert "Traceback" not in stderr
    [cut_short] = lines_starting(stderr, "done song.mid@")[1:]
    cut_id = cut_short.split()[1].rstrip(":")
    sent = int(re.search(r": (\d+) of 103 events sent in", cut_short).group(1))
    pass_name = "pass 2" if passes == "forever" else "pass 2/5"
    assert lines_starting(stderr, "stopped ") == [
        f"stopped by {signal.Signals(signum).name} in {pass_name}: 2 songs published, 1 whole pass; "
        f"the last, {cut_id}, ended early after {sent} of its {len(score)} events"
    ]

    songs = events_by_song(broker_url)
    assert len(songs) == 2
    cut = songs.pop(cut_id)
    [whole] = songs.values()
    assert_exactly_the_song(whole, "song.mid", score)
    *played, end = cut
    assert 0 < sent < len(score)
    assert [event["seq"] for event in played] == list(range(sent))
    assert [event["message"] for event in played] == [data for _, data in score[:sent]]
    assert end["end"] and end["seq"] == sent and end["score_time"] == played[-1]["score_time"]
    # As the worker counts it: the end event's seq is the song's count, so nothing is lost.
    stats = SongStats(cut_id)
    for event in played:
        stats.arrive(event["seq"])
    stats.expected = end["seq"]
    assert (stats.summary()["expected"], stats.summary()["lost"]) == (sent, 0)


K525 = K525_SHORT


@pytest.mark.parametrize("how, env, part", [
    (["--key-by", "channel"], {}, "ch"),
    ([], {"MIDI_KEY_BY": "track"}, "tr"),
    (["--key-by", "song"], {"MIDI_KEY_BY": "track"}, None),
])
def test_key_by_publishes_each_part_under_its_own_key_and_reports_the_song_whole(broker_url, how, env, part):
    # music21's k525short.mid: five parts, tracks 1-5 on channels 0-4 (ch1-ch5 as musicians count).
    result = produce(broker_url, *how, str(K525), env=env)

    assert result.returncode == 0, result.stderr
    [done] = lines_starting(result.stderr, "done ")
    events = read_topic(broker_url)
    songs = {event["song"] for event in events}
    if part is None:
        assert len(songs) == 1 and "parts" not in done
        return
    [song_id] = {song.rsplit("/", 1)[0] for song in songs}
    numbers = range(1, 6)
    assert songs == {f"{song_id}/{part}{number}" for number in numbers}
    assert done.startswith(f"done {song_id}: 462 events sent in ") and ", 5 parts," in done
    assert sum(not event["end"] for event in events) == 462
    assert {event["seq"] for event in events if event["end"]} == {98, 144, 76, 72}


@pytest.mark.parametrize("key_by, part", [(KeyBy.SONG, ""), (KeyBy.CHANNEL, "/ch16"), (KeyBy.TRACK, "/tr32766")])
def test_the_record_size_check_counts_a_parts_key_and_the_song_start_stamp(key_by, part):
    path = Path("a_rather_long_file_name_for_a_song.mid")
    key = new_song_id(path) + part
    widest = [(-2.2250738585072014e-308, [255, 255, 255])] * DEFAULT_EVENTS_PER_RECORD
    # As wide as a record of this song can get, stamped as the producer stamps every event.
    value = encode_events(key, 1_000_000, widest, sent_at=-2.2250738585072014e-308, speed_ratio=123.456,
                          padding="x" * 100, song_start=-2.2250738585072014e-308)

    estimate = largest_record_bytes(path, speed_ratio=123.456, record_size=100, key_by=key_by)

    assert estimate >= DefaultRecordBatchBuilder.estimate_size_in_bytes(key.encode(), value, [])
