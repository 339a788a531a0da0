"""Bad records on the notes topic are skipped, counted and logged (rate-limited); the song around them
plays on, and nothing invalid reaches the MIDI port.

Values go onto the topic raw, as any producer could send them, between the valid records of a song.
"""
from __future__ import annotations

import json
import time

from harness.processes import WorkerProcess
from tests.recording_backend import read_recording
from tests.topic_values import create_topic, end_record, produce_values, song_record

SONG = "between-bad-records"
# Seq numbers of the invalid events, apart from the song's own, so a rejected one cannot pass as lost.
BAD_SEQ = 1000
# More than Faust's consumer fetch size (1 MiB per partition): the broker hands it over whole anyway.
OVERSIZED = 2 * 1024 * 1024 + 1
# playback.player.INVALID_LOG_INTERVAL, the rate limit of the warning
WARNING_INTERVAL = 5.0

FIRST = [(0.0, [0xC0, 5]), (0.01, [0x90, 60, 90]), (0.02, [0xB0, 64, 127])]
MIXED_VALID = (0.03, [0x90, 64, 90])
SECOND = [(0.04, [0x80, 60, 0]), (0.05, [0x80, 64, 0]), (0.06, [0xB0, 64, 0])]


def bad_event(message: list[int]) -> dict:
    return json.loads(song_record(SONG, BAD_SEQ, [(0.1, message)]))[0]


BAD_VALUES: dict[str, bytes | None] = {
    "no value": None,
    "empty value": b"",
    "garbage bytes": b"\xff\xfe\x00\x81garbage",
    "text": b"play me",
    "truncated JSON": song_record(SONG, BAD_SEQ, [(0.1, [0x90, 60, 90])])[:-7],
    "JSON string": b'"a note"',
    "empty array": b"[]",
    "object of another shape": b'{"type": "note_on", "note": 60, "velocity": 90}',
    "field of the wrong type": json.dumps({**bad_event([0x90, 60, 90]), "seq": "3"}).encode(),
    "note 300": json.dumps([bad_event([0x90, 300, 90])]).encode(),
    "channel 99": json.dumps([bad_event([0x90 + 99, 60, 90])]).encode(),
    "velocity 200": json.dumps([bad_event([0x90, 60, 200])]).encode(),
    "missing data byte": json.dumps([bad_event([0x90, 60])]).encode(),
    "oversized": b"x" * OVERSIZED,
}


def test_bad_records_are_skipped_counted_and_logged_while_the_song_plays_on(worker_env, broker_url, recording):
    create_topic(broker_url, partitions=1)
    # One record holding a valid event and an invalid one: the valid one still plays.
    mixed = json.dumps([json.loads(song_record(SONG, len(FIRST), [MIXED_VALID]))[0],
                        bad_event([0x90, 128, 90])]).encode()
    invalid = len(BAD_VALUES) + 1
    with WorkerProcess(worker_env) as worker:
        produce_values(broker_url, [
            song_record(SONG, 0, FIRST),
            *BAD_VALUES.values(),
            mixed,
            song_record(SONG, len(FIRST) + 1, SECOND),
            end_record(SONG, len(FIRST) + 1 + len(SECOND), 0.07),
        ], key=SONG.encode())
        [summary] = worker.wait_for_summaries(1, timeout=20)
        status = worker.wait_for(lambda line: f"status: {invalid} invalid records skipped" in line, timeout=10)
        first_warning_at = time.monotonic()
        assert status is not None, "no status line counting the invalid records"

        # The warning is rate-limited: the next one, after the interval, says how many went unlogged.
        time.sleep(max(0.0, first_warning_at + WARNING_INTERVAL + 0.2 - time.monotonic()))
        produce_values(broker_url, [b"{"], key=SONG.encode())
        later = worker.wait_for(lambda line: "skipped an invalid record" in line, timeout=10)
        assert worker.process.poll() is None
    warnings = [line for line in worker.lines if "skipped an invalid record" in line]

    score = FIRST + [MIXED_VALID] + SECOND
    played = [entry["bytes"] for entry in read_recording(recording)]
    assert played[: len(score)] == [data for _, data in score]
    # After the song only its releases: All Notes Off and All Sound Off on channel 0, nothing invalid.
    assert played[len(score):] == [[0xB0, 123, 0], [0xB0, 120, 0]]
    assert (summary["events"], summary["expected"], summary["lost"]) == (len(score), len(score), 0)
    assert len(warnings) == 2, warnings
    assert f"(and {invalid - 1} more since the last report)" in later
