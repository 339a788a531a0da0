"""A song's parts (``produce-midi --key-by``): which key each event is published under, and each part's
own sequence numbers and end event.

Keyed by song (the default), a song is one part under its song id, numbered as always. Keyed by channel
or track, each part (its events on one MIDI channel, 1-16 as musicians count, or from one track of the
file, 0 first as mido numbers them) has its own key, ``<song id>/ch<N>`` or ``<song id>/tr<N>``
(models/midi_event.py), so the parts spread over the topic's partitions and the workers; every part is
numbered from 0 and ends with its own end event, so a worker counts loss, duplicates and reordering
exactly per part. The song is still published as one, in score order: the events due together (a
chord) leave as one record per part, back to back.
"""
from __future__ import annotations

from typing import NamedTuple

from config.settings import KeyBy
from models.midi_event import part_key
from producer.songs import Song

# How each part of a song is named in its key, by what the song is keyed by.
PART_KIND = {KeyBy.CHANNEL: "ch", KeyBy.TRACK: "tr"}
# The widest a part's key gets beyond its song id: channel 16, or the last of the 32,767 tracks a
# file's header can count.
WIDEST_PART_SUFFIX = {KeyBy.SONG: "", KeyBy.CHANNEL: "/ch16", KeyBy.TRACK: "/tr32766"}


class PartRecord(NamedTuple):
    """A record to send: ``events`` (score time, message bytes) of the part ``key``, numbered from ``first_seq``."""

    key: str
    first_seq: int
    events: list[tuple[float, tuple[int, ...]]]


class SongParts:
    """Numbers a song's events per part as they are published, and gives each part's end event.

    ``records(start, stop)`` turns the song's events ``start`` to ``stop`` (in score order) into one
    record per part, in the order the parts first appear among them, each part's events in score
    order and numbered on from where its last record left off.
    """

    def __init__(self, song: Song, song_id: str, key_by: KeyBy = KeyBy.SONG) -> None:
        self.song = song
        self.song_id = song_id
        self.key_by = KeyBy(key_by)
        # Events sent so far, and the score time of the last one, per part, in the order parts started.
        self.sent: dict[str, int] = {}
        self.last_score_time: dict[str, float] = {}
        if self.key_by is KeyBy.SONG:
            self.keys = None
        else:
            self.keys = self._part_keys()

    def _part_keys(self) -> list[str]:
        """The part key of every event of the song, computed once: publishing a backlog at ``-s 0`` looks
        up hundreds of thousands a second."""
        kind = PART_KIND[self.key_by]
        if self.key_by is KeyBy.CHANNEL:
            names = [part_key(self.song_id, kind, channel + 1) for channel in range(16)]
            return [names[event.message[0] & 0x0F] for event in self.song.events]
        if len(self.song.tracks) != len(self.song.events):
            raise ValueError(f"{self.song.path}: keying by track needs the song read with its tracks")
        names = {track: part_key(self.song_id, kind, track) for track in set(self.song.tracks)}
        return [names[track] for track in self.song.tracks]

    def records(self, start: int, stop: int) -> list[PartRecord]:
        events = self.song.events
        if self.keys is None:
            first = self.sent.get(self.song_id, 0)
            batch = [(event.score_time, event.message) for event in events[start:stop]]
            self._count(self.song_id, len(batch), batch[-1][0])
            return [PartRecord(self.song_id, first, batch)]
        grouped: dict[str, list[tuple[float, tuple[int, ...]]]] = {}
        keys = self.keys
        for index in range(start, stop):
            event = events[index]
            grouped.setdefault(keys[index], []).append((event.score_time, event.message))
        records = []
        for key, batch in grouped.items():
            records.append(PartRecord(key, self.sent.get(key, 0), batch))
            self._count(key, len(batch), batch[-1][0])
        return records

    def _count(self, key: str, events: int, last_score_time: float) -> None:
        self.sent[key] = self.sent.get(key, 0) + events
        self.last_score_time[key] = last_score_time

    def ends(self) -> list[PartRecord]:
        """The end event of every part that sent something, in the order they started: its ``seq`` is the
        part's count of events sent, its score time its last event's. A song with no events at all ends
        with one end event under its song id, counting 0; a part never sent (the song stopped before it
        began) gets none, as a song stopped before its first event gets none."""
        if not self.sent and not self.song.events:
            return [PartRecord(self.song_id, 0, [(0.0, ())])]
        return [PartRecord(key, count, [(self.last_score_time[key], ())]) for key, count in self.sent.items()]

    @property
    def count(self) -> int:
        """Parts that sent something so far."""
        return len(self.sent)
