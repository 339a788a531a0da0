"""adjustments/raw_table_keys.py: a song's resume point goes to the changelog partition numbered as the
song's notes partition, and its key reads back as the song id."""
from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner


def test_each_song_s_resume_point_is_written_to_its_notes_partition_number():
    from midi_app import app, played_seqs

    partitioner = DefaultPartitioner()
    songs = [f"song{index}.mid@{uuid.uuid4().hex[:8]}" for index in range(200)]
    for partitions in (2, 3):
        every = list(range(partitions))
        for song in songs:
            # As Faust's producer sends the changelog record (the table's key serializer), and as
            # produce-midi sends the song's notes (the id's bytes), both through aiokafka's partitioner.
            changelog_key = app.serializers.dumps_key(played_seqs.key_type, song,
                                                      serializer=played_seqs.changelog_topic.key_serializer)
            assert partitioner(changelog_key, every, every) == partitioner(song.encode(), every, every), song
    assert played_seqs.key_serializer == played_seqs.changelog_topic.key_serializer == "raw"


def test_a_changelog_key_reads_back_as_the_song_id():
    from midi_app import app, played_seqs

    topic = played_seqs.changelog_topic
    assert app.serializers.loads_key(topic.key_type, b"song0.mid@1a2b", serializer=topic.key_serializer) \
        == "song0.mid@1a2b"
