"""read_song and find_midi_files: real files read exactly as mido plays them, every broken file named."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from producer.songs import Song, SongError, find_midi_files, read_song
from tests.song_files import every_kind_timeline, mido_score, running_status_flood, write_song

REAL_WORLD_FOLDER = Path("/usr/share/games/openttd/baseset/openmsx")
DEMO_FOLDER = Path(__file__).resolve().parent.parent / "songs"
LIMITS = {"max_file_bytes": 16 * 1024 * 1024, "max_song_seconds": 4 * 3600.0, "max_song_events": 1_000_000}
NOBODY = 65534


def chunk(name: bytes, data: bytes) -> bytes:
    return name + struct.pack(">I", len(data)) + data


def track(*events: bytes) -> bytes:
    """An MTrk chunk of raw ``delta + message`` events, closed with end_of_track."""
    return chunk(b"MTrk", b"".join(events) + b"\x00\xff\x2f\x00")


def smf(*tracks: bytes, fmt: int = 1, division: int = 480, track_count: int | None = None) -> bytes:
    header = struct.pack(">hhh", fmt, len(tracks) if track_count is None else track_count, division)
    return chunk(b"MThd", header) + b"".join(tracks)


NOTE = b"\x00\x90\x3c\x64" + b"\x83\x60\x80\x3c\x00"  # middle C on at 0, off 480 ticks later
GOOD_TRACK = track(NOTE)


def read(path: Path, **limits) -> Song:
    return read_song(path, **{**LIMITS, **limits})


def rejection(path: Path, **limits) -> str:
    with pytest.raises(SongError) as caught:
        read(path, **limits)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


@pytest.mark.parametrize("path", [*sorted(DEMO_FOLDER.glob("*.mid")), *sorted(REAL_WORLD_FOLDER.glob("*.mid"))[:4]],
                         ids=lambda path: path.name)
def test_real_files_read_exactly_as_mido_plays_them(path):
    expected = mido_score(path)
    song = read(path)

    assert [list(event.message) for event in song.events] == [data for _, data in expected]
    assert [event.score_time for event in song.events] == pytest.approx([seconds for seconds, _ in expected], abs=1e-9)


def test_generated_song_keeps_every_kind_of_message_and_its_time(tmp_path):
    score = write_song(tmp_path / "every_kind.mid", every_kind_timeline())
    song = read(tmp_path / "every_kind.mid")

    assert [list(event.message) for event in song.events] == [data for _, data in score]
    assert [event.score_time for event in song.events] == pytest.approx([seconds for seconds, _ in score], abs=1e-9)
    assert song.duration == pytest.approx(score[-1][0])


def test_tempo_changes_apply_across_tracks_and_only_channel_messages_are_kept(tmp_path):
    # Track 0: tempo 1 s per beat from tick 480. Track 1: sysex and a song-position message, then notes.
    tempo_track = track(b"\x83\x60\xff\x51\x03\x0f\x42\x40")
    notes = track(b"\x00\xf0\x03\x7e\x09\xf7", b"\x00\xf2\x00\x00", b"\x00\x90\x3c\x64", b"\x87\x40\x80\x3c\x00")
    (tmp_path / "tempo.mid").write_bytes(smf(tempo_track, notes))

    song = read(tmp_path / "tempo.mid")

    # 480 ticks at the default 0.5 s per beat, then 480 more at 1 s per beat.
    assert song.events == ((0.0, (0x90, 60, 100)), (1.5, (0x80, 60, 0)))


ODD_BUT_READABLE_FILES = {
    "running status after a sysex": smf(track(b"\x00\xf0\x02\x01\xf7", b"\x00\x05\x02\x01\xf7", NOTE)),
    "running status after a system message": smf(track(b"\x00\xf2\x01\x02", b"\x00\x03\x04", NOTE)),
    "sysex escape (F7)": smf(track(b"\x00\xf7\x02\x01\x02", NOTE)),
    "long text and a 2-byte delta": smf(track(b"\x00\xff\x01\x81\x48" + b"x" * 200, b"\x81\x48\x90\x3c\x64")),
    "unknown meta type with a delta time": smf(track(b"\x83\x60\xff\x60\x01\x00", NOTE)),
    "MThd longer than 6 bytes": chunk(b"MThd", struct.pack(">hhh", 1, 1, 480) + b"xx") + GOOD_TRACK,
    "bytes after the last track": smf(GOOD_TRACK) + b"junk",
    "tempo change in a later track": smf(GOOD_TRACK, track(b"\x81\x70\xff\x51\x03\x0f\x42\x40", NOTE, NOTE)),
}


@pytest.mark.parametrize("name", ODD_BUT_READABLE_FILES)
def test_odd_but_readable_file_reads_exactly_as_mido_plays_it(tmp_path, name):
    path = tmp_path / "odd.mid"
    path.write_bytes(ODD_BUT_READABLE_FILES[name])
    expected = [(seconds, data) for seconds, data in mido_score(path) if data[0] < 0xF0]  # channel messages
    song = read(path)

    assert [list(event.message) for event in song.events] == [data for _, data in expected]
    assert [event.score_time for event in song.events] == pytest.approx([seconds for seconds, _ in expected], abs=1e-9)


BROKEN_FILES = {
    "text file": (b"hello, this is not MIDI\n", "not a MIDI file: it does not start with an MThd header"),
    "empty": (b"", "file is empty"),
    "truncated": (smf(GOOD_TRACK)[:-3], "truncated"),
    "missing track": (smf(GOOD_TRACK, track_count=2), "truncated"),
    "not a track chunk": (smf(chunk(b"XTrk", b"\x00\xff\x2f\x00")), "no MTrk header"),
    "data byte over 127": (smf(track(b"\x00\x90\x3c\xc8")), "data byte must be in range"),
    "running status first": (smf(track(b"\x00\x3c\x64")), "running status without last_status"),
    "undefined status": (smf(track(b"\x00\xf4")), "undefined status byte 0xf4"),
    "impossible key signature": (smf(track(b"\x00\xff\x59\x02\x30\x01", NOTE)), "broken key signature"),
    "short tempo": (smf(track(b"\x00\xff\x51\x02\x07\xa1", NOTE)), "meta message is shorter than its type requires"),
    "SMPTE offset frame rate": (smf(track(b"\x00\xff\x54\x05\xe0\x00\x00\x00\x00", NOTE)), "code MIDI does not define"),
    "SMPTE offset minutes": (smf(track(b"\x00\xff\x54\x05\x00\x3c\x00\x00\x00", NOTE)), "values MIDI does not allow"),
    "type 2": (smf(GOOD_TRACK, fmt=2), "type 2"),
    "format 7": (smf(GOOD_TRACK, fmt=7), "unknown MIDI file format 7"),
    "SMPTE division": (smf(GOOD_TRACK, division=(-25 << 8) | 40), "SMPTE time division"),
    "zero division": (smf(GOOD_TRACK, division=0), "0 ticks per beat"),
    "zero tempo": (smf(track(b"\x00\xff\x51\x03\x00\x00\x00", NOTE)), "tempo of 0"),
    "delta over 4 bytes": (smf(track(b"\x81\x80\x80\x80\x80\x00\x90\x3c\x64")), "4-byte maximum"),
    "9.7 hours of silence": (smf(track(b"\xff\xff\xff\x7f\x90\x3c\x64"), division=3840),
                             "song lasts 34952.5 s (9.7 h)"),
    "no tracks": (smf(), "no notes or other channel messages"),
    "only meta messages": (smf(track(b"\x00\xff\x03\x04name")), "no notes or other channel messages"),
}


@pytest.mark.parametrize("name", BROKEN_FILES)
def test_broken_file_is_rejected_with_one_line_naming_it_and_the_reason(tmp_path, name):
    data, reason = BROKEN_FILES[name]
    path = tmp_path / "broken.mid"
    path.write_bytes(data)

    assert reason in rejection(path)


def test_limits_on_size_events_and_length(tmp_path):
    path = tmp_path / "song.mid"
    path.write_bytes(smf(track(NOTE, NOTE, NOTE)))

    assert len(read(path).events) == 6
    assert "larger than the limit of 20 bytes (MIDI_MAX_FILE_BYTES)" in rejection(path, max_file_bytes=20)
    assert "more than 5 channel messages" in rejection(path, max_song_events=5)
    assert "longer than the limit of 1 s (MIDI_MAX_SONG_SECONDS)" in rejection(path, max_song_seconds=1.0)
    assert read(path, max_file_bytes=path.stat().st_size, max_song_events=6, max_song_seconds=1.5).duration == 1.5


# A child process, so that the peak memory measured is the reading's alone.
READ_IN_CHILD = """
import json, resource, sys, time
from pathlib import Path
from producer.songs import SongError, read_song
started = time.monotonic()
try:
    read_song(Path(sys.argv[1]), **json.loads(sys.argv[2]))
    outcome = "accepted"
except SongError as exc:
    outcome = str(exc)
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"outcome": outcome, "seconds": time.monotonic() - started, "peak_mib": peak_mib}))
"""


def test_file_of_millions_of_messages_is_refused_at_the_event_limit_within_seconds_and_little_memory(tmp_path):
    # mido took minutes and 2-3 GB to parse such a file before its events could be counted.
    path = tmp_path / "flood.mid"
    assert running_status_flood(path, LIMITS["max_file_bytes"]) > 8 * LIMITS["max_song_events"]

    child = subprocess.run([sys.executable, "-c", READ_IN_CHILD, str(path), json.dumps(LIMITS)],
                           cwd=DEMO_FOLDER.parent, capture_output=True, text=True, timeout=30)
    result = json.loads(child.stdout)

    assert result["outcome"] == f"{path}: more than 1000000 channel messages, the limit (MIDI_MAX_SONG_EVENTS)"
    assert result["seconds"] < 10
    assert result["peak_mib"] < 1000


def test_flood_of_meta_messages_is_refused_at_the_event_limit(tmp_path):
    path = tmp_path / "markers.mid"
    path.write_bytes(smf(track(NOTE, *[b"\x00\xff\x06\x00"] * 100)))

    assert len(read(path).events) == 2
    assert "more than 50 meta, sysex and system messages, the limit (MIDI_MAX_SONG_EVENTS)" in rejection(
        path, max_song_events=50)


def test_paths_that_are_not_regular_files_are_rejected_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.mid")
    (tmp_path / "folder.mid").mkdir()
    (tmp_path / "dangling.mid").symlink_to(tmp_path / "gone.mid")
    outcomes: dict[str, str] = {}

    def read_all() -> None:
        for name in ("pipe.mid", "folder.mid", "dangling.mid", "missing.mid"):
            outcomes[name] = rejection(tmp_path / name)

    reader = threading.Thread(target=read_all, daemon=True)
    reader.start()
    reader.join(timeout=10)  # opening a FIFO for reading blocks until a writer comes, unless done right

    assert not reader.is_alive(), "read_song blocked on a FIFO"
    assert "not a regular file" in outcomes["pipe.mid"]
    assert "is a folder" in outcomes["folder.mid"]
    assert "No such file or directory" in outcomes["dangling.mid"]
    assert "No such file or directory" in outcomes["missing.mid"]


@contextmanager
def unprivileged():
    """Root reads any file whatever its mode; act as nobody so permissions count, as for a normal user."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


def test_unreadable_file_is_rejected():
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        readable, locked = Path(folder, "readable.mid"), Path(folder, "locked.mid")
        for path in (readable, locked):
            path.write_bytes(smf(GOOD_TRACK))
        locked.chmod(0o000)

        with unprivileged():
            song = read(readable)
            message = rejection(locked)

    assert len(song.events) == 2
    assert "cannot open: Permission denied" in message


def test_find_midi_files_expands_folders_and_globs_and_names_what_is_missing(tmp_path):
    (tmp_path / "b.mid").write_bytes(smf(GOOD_TRACK))
    (tmp_path / "A.MIDI").write_bytes(smf(GOOD_TRACK))
    (tmp_path / "notes.txt").write_text("not a song")
    (tmp_path / "sub.mid").mkdir()
    os.mkfifo(tmp_path / "pipe.mid")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no songs here")

    found, problems = find_midi_files(
        [str(tmp_path), str(tmp_path / "empty"), str(tmp_path / "nothing.mid"), str(tmp_path / "*.kar"),
         str(tmp_path / "notes.txt")]
    )

    # Entries with a MIDI name that are not files are kept, so read_song can say what they are.
    assert found == [tmp_path / name for name in ("A.MIDI", "b.mid", "pipe.mid", "sub.mid", "notes.txt")]
    assert [str(problem) for problem in problems] == [
        f"{tmp_path / 'empty'}: folder has no .mid or .midi files",
        f"{tmp_path / 'nothing.mid'}: no such file or folder",
        f"{tmp_path / '*.kar'}: no file matches this pattern",
    ]
