"""Values from the notes topic turned into events, within the worker's limits; what falls outside them
is a problem to count, never an exception for the agent."""
from __future__ import annotations

from config.settings import Settings
from models.midi_event import InvalidEvent, decode_record


class RecordDecoder:
    """Decodes a value (models/midi_event.py) after checking its size, and leaves out events due too far
    after their song's start.

    A value over ``max_record_bytes`` is not parsed at all: a valid JSON value parses whatever its size,
    at the cost of the notes of every other song waiting behind it. An event playing more than
    ``max_song_seconds`` after its song's start is refused: no song plays that long (produce-midi
    refuses it), and its slot would hold the song's buffer, which plays in arrival order, for as long.
    """

    def __init__(self, max_record_bytes: int = Settings.max_record_bytes,
                 max_song_seconds: float = Settings.max_song_seconds) -> None:
        self.max_record_bytes = max_record_bytes
        self.max_song_seconds = max_song_seconds

    def decode(self, raw: bytes | None) -> tuple[list, list[InvalidEvent]]:
        """The value's valid events and a problem per invalid one; raises InvalidEvent when none of it is usable."""
        if raw is not None and len(raw) > self.max_record_bytes:
            raise InvalidEvent(f"{len(raw)} bytes, over the limit of {self.max_record_bytes} (MIDI_MAX_RECORD_BYTES)")
        events, problems = decode_record(raw)
        limit = self.max_song_seconds
        if all(event.score_time * event.speed_ratio <= limit for event in events):
            return events, problems  # the usual case, checked without building a second list
        kept = []
        for event in events:
            due = event.score_time * event.speed_ratio
            if due > self.max_song_seconds:
                problems.append(InvalidEvent(f"seq {event.seq} of {event.song} plays {due:g} s after the song's "
                                             f"start, past MIDI_MAX_SONG_SECONDS ({self.max_song_seconds:g})"))
            else:
                kept.append(event)
        return kept, problems
