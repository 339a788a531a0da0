"""mid:PATH: the MIDI file of a played song holds the score's messages at their real playing times."""
from __future__ import annotations

import mido

from outputs.midi_recording import MidiRecording
from harness.processes import WorkerProcess, run_producer
from tests.song_files import every_kind_timeline, write_song
from tests.test_end_to_end import assert_only_releases, p99, timing_errors_ms


def recorded(path) -> list[tuple[float, list[int]]]:
    """(seconds from the first message, bytes) for each channel message in the file."""
    now, messages = 0.0, []
    for message in mido.MidiFile(path):
        now += message.time
        if not message.is_meta:
            messages.append((now, message.bytes()))
    return messages


def test_recording_of_a_played_song_has_the_score_s_messages_at_the_measured_timing(tmp_path, broker_url):
    score = write_song(tmp_path / "every_kind.mid", every_kind_timeline())
    mid_path = tmp_path / "played.mid"
    env = {"BROKER_URL": broker_url, "MIDI_OUTPUT": f"mid:{mid_path}"}
    with WorkerProcess(env) as worker:
        assert run_producer([str(tmp_path / "every_kind.mid")], env).returncode == 0
        [summary] = worker.wait_for_summaries(1, timeout=60)
        at_song_end = recorded(mid_path)  # complete at the song's end, before the worker stops
    played = recorded(mid_path)

    assert at_song_end == played
    assert [data for _, data in played[: len(score)]] == [data for _, data in score]
    assert_only_releases([data for _, data in played[len(score):]])
    errors = timing_errors_ms([seconds for seconds, _ in played[: len(score)]], [seconds for seconds, _ in score])
    measured = summary["timing_error_ms"]["max"]
    print(f"recording's timing error p99 {p99(errors):.2f} ms, max {errors[-1]:.2f} ms;"
          f" worker measured max {measured:.2f} ms")
    # The recording's clock is read inside the output, the worker's just after it: within 1 ms of each other.
    assert errors[-1] <= measured + 1.0


def test_the_file_is_complete_from_the_start_and_after_each_song_with_each_chord_at_its_instant(tmp_path):
    path = tmp_path / "recording.mid"
    recording = MidiRecording(path)
    try:
        assert recorded(path) == []
        recording.play([mido.Message("note_on", note=60, velocity=90), mido.Message("note_on", note=64, velocity=90)],
                       at=50.0)
        recording.play([mido.Message("note_off", note=60, velocity=0)], at=50.5)
        recording.song_ended(still_playing=False, at=50.5)
        assert recorded(path) == [(0.0, [0x90, 60, 90]), (0.0, [0x90, 64, 90]), (0.5, [0x80, 60, 0])]
        recording.play([mido.Message("program_change", program=5)], at=52.25)
    finally:
        recording.close()
    assert recorded(path)[-1] == (2.25, [0xC0, 5])
    assert not list(tmp_path.glob("*.partial"))
