"""producer/parts.py: a real multi-channel, multi-track file split into parts, each numbered and ended
on its own, published in score order; and keying by song left as it always was."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import mido
import pytest

from config.settings import KeyBy
from models.midi_event import split_part
from producer.parts import SongParts
from producer.songs import read_song
from tests.song_files import K525_SHORT

# music21's 16 s excerpt of Eine kleine Nachtmusik: 5 tracks after a conductor track, one channel each.
K525 = K525_SHORT
OPENMSX = Path("/usr/share/games/openttd/baseset/openmsx")
LIMITS = {"max_file_bytes": 16 * 1024 * 1024, "max_song_seconds": 4 * 3600.0, "max_song_events": 1_000_000}
SONG_ID = "k525short.mid@1a2b3c4d"


def publish_in_chords(parts: SongParts, chord: int = 7) -> tuple[list[list], list]:
    """The records the parts give for each batch when the song goes out ``chord`` events at a time, and
    the end events."""
    events = parts.song.events
    batches = [parts.records(start, min(len(events), start + chord)) for start in range(0, len(events), chord)]
    return batches, parts.ends()


def events_per_key(records) -> dict[str, list[tuple[int, tuple]]]:
    """(seq, (score time, message)) of every event, by key, in the order sent."""
    by_key = defaultdict(list)
    for key, first_seq, batch in records:
        by_key[key].extend((first_seq + offset, event) for offset, event in enumerate(batch))
    return by_key


def mido_messages_by(path: Path, part_of) -> dict[int, list[list[int]]]:
    """Each part's channel messages as mido reads the file, in order: ``part_of(track, message)``."""
    parts = defaultdict(list)
    for track_number, track in enumerate(mido.MidiFile(path).tracks):
        for message in track:
            if not message.is_meta and message.type != "sysex":
                parts[part_of(track_number, message)].append(message.bytes())
    return parts


def check_parts_are_exact(song, batches, ends, chord: int = 7) -> dict[str, list]:
    """Each part numbered 0.. without gaps, its end event carrying its count and last score time, every
    event of the song in exactly one part, and each batch of the song's events (in score order) sent as
    its records before the next batch's."""
    records = [record for batch_records in batches for record in batch_records]
    by_key = events_per_key(records)
    for key, numbered in by_key.items():
        assert [seq for seq, _ in numbered] == list(range(len(numbered))), key
    assert {key: (first_seq, batch) for key, first_seq, batch in ends} == {
        key: (len(numbered), [(numbered[-1][1][0], ())]) for key, numbered in by_key.items()}
    assert sum(len(numbered) for numbered in by_key.values()) == len(song.events)
    # Interleaved in score order: each batch's records hold exactly that batch's events (its parts' in order).
    for index, batch_records in enumerate(batches):
        sent = sorted(event for _, _, batch in batch_records for event in batch)
        assert sent == sorted(tuple(event) for event in song.events[index * chord:(index + 1) * chord])
    return {key: [event for _, event in numbered] for key, numbered in by_key.items()}


def test_keyed_by_channel_each_channel_is_a_part_numbered_and_ended_on_its_own():
    song = read_song(K525, **LIMITS)
    batches, ends = publish_in_chords(SongParts(song, SONG_ID, KeyBy.CHANNEL))

    parts = check_parts_are_exact(song, batches, ends)

    # Channels as musicians count them: the file's channels 0-4 are parts ch1-ch5.
    assert sorted(parts) == [f"{SONG_ID}/ch{channel}" for channel in range(1, 6)]
    expected = mido_messages_by(K525, lambda track, message: message.channel + 1)
    assert {key: [list(message) for _, message in events] for key, events in parts.items()} == {
        f"{SONG_ID}/ch{channel}": messages for channel, messages in expected.items()}
    assert {split_part(key) for key in parts} == {(SONG_ID, f"ch{channel}") for channel in range(1, 6)}


def test_keyed_by_track_each_track_is_a_part_numbered_as_mido_numbers_tracks():
    song = read_song(K525, **LIMITS, with_tracks=True)
    batches, ends = publish_in_chords(SongParts(song, SONG_ID, KeyBy.TRACK))

    parts = check_parts_are_exact(song, batches, ends)

    # Track 0 is the conductor track (tempo, no channel messages): it is no part.
    assert sorted(parts) == [f"{SONG_ID}/tr{track}" for track in range(1, 6)]
    expected = mido_messages_by(K525, lambda track, message: track)
    assert {key: [list(message) for _, message in events] for key, events in parts.items()} == {
        f"{SONG_ID}/tr{track}": messages for track, messages in expected.items()}


@pytest.mark.parametrize("name", ["5432gone_redfarn.mid", "busy_schedule.mid"])
def test_real_files_split_by_channel_and_by_track_exactly_as_mido_reads_them(name):
    path = OPENMSX / name
    assert path.exists(), "needs Debian's openttd-openmsx, which make test installs"
    song = read_song(path, **LIMITS, with_tracks=True)

    by_channel = check_parts_are_exact(song, *publish_in_chords(SongParts(song, SONG_ID, KeyBy.CHANNEL), 64), 64)
    by_track = check_parts_are_exact(song, *publish_in_chords(SongParts(song, SONG_ID, KeyBy.TRACK), 64), 64)

    assert len(by_channel) > 1 and len(by_track) > 1
    assert {key: [list(message) for _, message in events] for key, events in by_channel.items()} == {
        f"{SONG_ID}/ch{channel}": messages
        for channel, messages in mido_messages_by(path, lambda track, message: message.channel + 1).items()}
    assert {key: [list(message) for _, message in events] for key, events in by_track.items()} == {
        f"{SONG_ID}/tr{track}": messages
        for track, messages in mido_messages_by(path, lambda track, message: track).items()}


def test_a_chord_across_parts_leaves_as_one_record_per_part_in_the_order_the_parts_first_appear():
    song = read_song(K525, **LIMITS)
    parts = SongParts(song, SONG_ID, KeyBy.CHANNEL)
    first_chord = sum(1 for event in song.events if event.score_time == 0.0)

    records = parts.records(0, first_chord)

    channels = [event.message[0] & 0x0F for event in song.events[:first_chord]]
    assert [key for key, _, _ in records] == [f"{SONG_ID}/ch{channel + 1}" for channel in dict.fromkeys(channels)]
    assert all(first_seq == 0 for _, first_seq, _ in records)
    # The next records of those parts carry on from where these left off.
    later = {key: first_seq for key, first_seq, _ in parts.records(first_chord, len(song.events))}
    assert later == {key: len(batch) for key, _, batch in records if key in later}


def test_keyed_by_song_the_song_is_one_part_under_its_id_numbered_as_before():
    song = read_song(K525, **LIMITS)
    parts = SongParts(song, SONG_ID)

    batches, ends = publish_in_chords(parts)
    records = [record for batch_records in batches for record in batch_records]

    assert [len(batch_records) for batch_records in batches] == [1] * len(batches)
    assert {key for key, _, _ in records} == {SONG_ID}
    assert [first_seq for _, first_seq, _ in records] == list(range(0, len(song.events), 7))
    assert ends == [(SONG_ID, len(song.events), [(song.events[-1].score_time, ())])]
    assert parts.count == 1


def test_a_song_stopped_early_ends_only_the_parts_it_began_each_with_what_it_sent():
    song = read_song(K525, **LIMITS)
    parts = SongParts(song, SONG_ID, KeyBy.CHANNEL)
    sent = parts.records(0, 3)

    assert {key: first_seq for key, first_seq, _ in parts.ends()} == {key: len(batch) for key, _, batch in sent}
    assert SongParts(song, SONG_ID, KeyBy.CHANNEL).ends() == []


def test_keying_by_track_needs_the_tracks_read():
    with pytest.raises(ValueError, match="with its tracks"):
        SongParts(read_song(K525, **LIMITS), SONG_ID, KeyBy.TRACK)
