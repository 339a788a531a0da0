"""agents/stage.py: the worker's playing state, exercised in-process with events as Faust hands them over."""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field

from faust.types import TP

from agents.stage import Stage
from config.settings import Settings
from models.midi_event import encode_events
from tests.topic_values import end_record, song_record

NOTES = Settings(outputs=("log",), song_idle_timeout=0)


@dataclass
class Message:
    tp: TP
    offset: int


@dataclass
class Event:
    """What Faust's ``events()`` yields, as far as the agent reads it."""

    value: bytes
    key: bytes
    message: Message
    acknowledged: list = field(default_factory=list)

    def ack(self) -> None:
        self.acknowledged.append(self.message.offset)


async def events_of(*events: Event, then: asyncio.Event | None = None):
    for event in events:
        yield event
    if then is not None:
        await then.wait()


async def test_every_record_is_played_and_acknowledged_in_the_order_read_and_the_table_holds_the_resume_point():
    table: dict[str, int] = {}
    listeners: list = []
    stage = Stage(NOTES, table, listeners)
    acknowledged: list[int] = []
    partition = TP("midi", 0)
    records = [song_record("a", 0, [(0.0, [0x90, 60, 90]), (0.0, [0x90, 64, 90])]),
               song_record("a", 2, [(0.5, [0x80, 60, 0])]), end_record("a", 3, 0.5)]
    events = [Event(value, b"a", Message(partition, offset), acknowledged) for offset, value in enumerate(records)]

    await stage.play(events_of(*events))

    assert acknowledged == [0, 1, 2]
    assert {song: point.seq for song, point in table.items()} == {"a": 3}
    assert stage.players == [] and listeners == [], "the player leaves with the agent"


async def test_songs_of_a_partition_that_moved_are_released_and_the_others_play_on():
    stage = Stage(NOTES, {}, [])
    kept, moved = TP("midi", 0), TP("midi", 1)
    finish = asyncio.Event()
    playing = asyncio.create_task(stage.play(events_of(
        Event(song_record("stays", 0, [(0.0, [0x90, 60, 90])]), b"stays", Message(kept, 0)),
        Event(song_record("goes", 0, [(0.0, [0x91, 62, 90])]), b"goes", Message(moved, 0)),
        then=finish)))
    await asyncio.sleep(0.05)
    [player] = stage.players

    stage.release_moved_songs({kept})

    assert set(player.outputs.sounding) == {"stays"}
    assert "goes" not in player.songs and "stays" in player.songs
    assert stage.song_partitions.partition_of == {"stays": kept}
    lines = stage.status_lines({"live": 3, "idle": 0, "catching up": 0})
    assert lines[0].startswith("status: stays: 1 events") and lines[1].startswith("kafka load: fetches/s: ")
    finish.set()
    await playing


async def test_the_status_names_each_partition_s_latency_since_the_last_line_and_a_silent_one():
    stage = Stage(NOTES, {}, [])
    quick, slow = TP("midi", 0), TP("midi", 2)
    finish = asyncio.Event()
    late = encode_events("late", 0, [(0.0, [0x91, 62, 90]), (0.0, [0x91, 64, 90])], sent_at=time.time() - 0.3,
                         speed_ratio=1.0)
    playing = asyncio.create_task(stage.play(events_of(
        Event(song_record("on time", 0, [(0.0, [0x90, 60, 90])]), b"on time", Message(quick, 0)),
        Event(late, b"late", Message(slow, 0)),
        then=finish)))
    await asyncio.sleep(0.05)

    [line] = [line for line in stage.status_lines(None) if line.startswith("latency by partition")]
    figures = dict(re.findall(r"(midi\[\d\]) p50 ([\d.]+) ms", line))
    assert set(figures) == {"midi[0]", "midi[2]"}, line
    assert float(figures["midi[0]"]) < 100 and 300 <= float(figures["midi[2]"]) < 1000, line
    assert "(2 events)" in line.split("midi[2]")[1]
    # Nothing played since: each partition is named as waiting, with how many songs.
    [line] = [line for line in stage.status_lines(None) if line.startswith("latency by partition")]
    assert line.endswith("midi[0] nothing played (1 song waiting), midi[2] nothing played (1 song waiting)"), line
    finish.set()
    await playing
