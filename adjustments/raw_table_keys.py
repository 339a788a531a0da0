"""The played_seqs table's changelog partitioned as the notes topic is: by the song id's own bytes.

Faust serializes a table's ``str`` keys as JSON (``Collection._serializer_from_type``: only ``bytes``
gets "raw"), so with ``use_partitioner`` the changelog record of song ``s`` is partitioned by the bytes
of ``"s"``, quotes included, while produce-midi keys the song's notes by ``s`` itself. For about half the
songs of a 2-partition topic the resume point then lived in a changelog partition whose notes partition
another worker owned, and a worker taking such a song over found no resume point: tests/test_handover.py's
worker joining mid-song, 2 runs of 4, played ~1 s of a song again and counted its first 105 events as
lost. With raw keys the bytes, hence the partition, are the song's. Resume points written with quoted keys
before this no longer match: a song playing across the upgrade resumes from its committed offset.
"""
from __future__ import annotations

from faust.tables.base import Collection

from adjustments.tripwire import Adjustment, Touch

ADJUSTMENT = Adjustment("adjustments/raw_table_keys.py", "resume points partitioned as their songs", (
    Touch(Collection, "_serializer_from_type"),
    Touch(Collection, "_new_changelog_topic"),
))


def with_raw_keys(table: Collection) -> Collection:
    """``table``, its keys written and read as their own UTF-8 bytes on its changelog."""
    table.key_serializer = "raw"
    # The changelog topic was made with the JSON key serializer when the table was created.
    table.changelog_topic = table._new_changelog_topic()
    return table
