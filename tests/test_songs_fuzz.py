"""Fuzzing read_song with mutated real MIDI files: it returns a playable song or raises SongError, nothing else,
and it reads a file as mido does: the same channel messages at the same times, or refused when mido refuses it.

Seeds are the demo songs and Debian's openttd-openmsx files. By default each real file is cut to its
first messages per track (mido parses ~200k messages/s, so whole files would allow only a few hundred
cases a minute) while keeping its real header and meta messages. For a longer run:

    MIDI_FUZZ_EXAMPLES=30000 MIDI_FUZZ_WHOLE_FILES=1 .venv/bin/python -m pytest -q tests/test_songs_fuzz.py
"""
from __future__ import annotations

import io
import math
import os
import random
import re
from pathlib import Path

import mido
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from models.midi_event import message_from_bytes
from producer.songs import SongError, read_song
from tests.song_files import mido_score
from tests.test_songs import DEMO_FOLDER, LIMITS, REAL_WORLD_FOLDER

EXAMPLES = int(os.environ.get("MIDI_FUZZ_EXAMPLES", "8000"))
WHOLE_FILES = os.environ.get("MIDI_FUZZ_WHOLE_FILES", "") == "1"
MESSAGES_KEPT_PER_TRACK = 40
HEADER_BYTES = 22  # after the MThd tag: header length, format, track count, division, first track's header
# Values that sit on the edges of MIDI's encodings: longest delta, running status, meta, sysex, tempo 0.
INTERESTING = (b"\xff\xff\xff\x7f", b"\x00", b"\x80", b"\xff", b"\xf0", b"\xf7",
               b"\xff\x51\x03\x00\x00\x00", b"\x7f\xff")
# Reasons for which mido itself cannot read the file; the others are the app's own checks and limits.
PARSE_ERRORS = ("not a MIDI file", "truncated", "broken MIDI data", "broken key signature", "a meta message",
                "values MIDI does not allow")


def trimmed(path: Path) -> bytes:
    midi = mido.MidiFile(path)
    midi.tracks = [mido.MidiTrack(track[:MESSAGES_KEPT_PER_TRACK]) for track in midi.tracks]
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def seeds() -> list[bytes]:
    real = sorted(REAL_WORLD_FOLDER.glob("*.mid"))
    assert real, "needs Debian's openttd-openmsx, which make test installs"
    return [path.read_bytes() for path in sorted(DEMO_FOLDER.glob("*.mid"))] + [
        path.read_bytes() if WHOLE_FILES else trimmed(path) for path in real
    ]


SEEDS = seeds()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few random edits, mostly anywhere, some in the header; positions are uniform, as a fuzzer's are."""
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 5, 8))):
        kind = rng.choice(("set", "set", "flip", "insert", "delete", "truncate", "header", "interesting"))
        at = rng.randrange(4, HEADER_BYTES) if kind == "header" else rng.randrange(len(data) + 1)
        if kind in ("set", "header") and at < len(data):
            data[at] = rng.randrange(256)
        elif kind == "flip" and at < len(data):
            data[at] ^= 1 << rng.randrange(8)
        elif kind == "insert":
            data[at:at] = rng.randbytes(rng.randint(1, 6))
        elif kind == "delete":
            del data[at:at + rng.randint(1, 8)]
        elif kind == "truncate":
            del data[at:]
        elif kind == "interesting":
            value = rng.choice(INTERESTING)
            data[at:at + len(value)] = value
    return bytes(data)


@pytest.fixture(scope="module")
def case_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "case.mid"


def test_every_seed_is_a_good_song(case_path):
    for seed in SEEDS:
        case_path.write_bytes(seed)
        assert read_song(case_path, **LIMITS).events


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seed=st.sampled_from(SEEDS), mutation=st.integers(0, 2**64 - 1))
def test_mutated_file_gives_a_playable_song_or_a_one_line_song_error(case_path, seed, mutation):
    case_path.write_bytes(mutate(seed, random.Random(mutation)))
    try:
        song = read_song(case_path, **LIMITS)
    except SongError as exc:
        message = str(exc)
        assert message.startswith(f"{case_path}: ") and "\n" not in message, message
        event("rejected: " + re.sub(r"-?[0-9][0-9.]*", "N", message.split(": ", 1)[1])[:48])
        if any(reason in message for reason in PARSE_ERRORS):
            assert not mido_reads(case_path), message
        return
    event("read")
    times = [score_event.score_time for score_event in song.events]
    assert 0 < len(song.events) <= LIMITS["max_song_events"]
    assert all(math.isfinite(t) for t in times) and times == sorted(times) and times[0] >= 0
    assert song.duration <= LIMITS["max_song_seconds"]
    for score_event in song.events:
        message_from_bytes(list(score_event.message))  # what the worker will accept from the topic
    expected = [(seconds, data) for seconds, data in mido_score(case_path) if data[0] < 0xF0]  # channel messages
    assert [list(score_event.message) for score_event in song.events] == [data for _, data in expected]
    assert times == pytest.approx([seconds for seconds, _ in expected], abs=1e-9)


def mido_reads(path: Path) -> bool:
    try:
        mido.MidiFile(path)
    except Exception:  # whatever mido raises on a broken file
        return False
    return True
