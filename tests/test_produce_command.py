"""``faust -A midi_app produce-midi`` run as a user runs it, against the embedded broker.

What was (not) published is read back with a real aiokafka consumer.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

from processes import run_producer
from producer.publish import ensure_topic
from tests.song_files import every_kind_timeline, write_song
from tests.topic_values import records_on_topic

TOPIC = "notes-under-test"


def bootstrap(broker_url: str) -> str:
    return broker_url.split("://", 1)[1]


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


def test_only_bad_files_publish_nothing_and_exit_non_zero(tmp_path, broker_url):
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x00\x00\x00")  # 0 tracks at 0 ticks per beat

    result = produce(broker_url, str(broken))

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
    assert 1_000_000 < largest < 1024 * 1024
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
                                  ("--record-size", "-5", "--record-size -5: must be 0 or more")):
        result = produce(broker_url, option, value, str(song))
        assert result.returncode == 2, result.stderr
        [line] = lines_starting(result.stderr, "refused:")
        assert line.startswith(f"refused: {reason}")
    assert read_topic(broker_url) == []
