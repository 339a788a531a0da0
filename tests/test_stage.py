"""agents/stage.py: the worker's playing state, exercised in-process with events as Faust hands them over."""
from __future__ import annotations

import asyncio
import gc
import re
import time
from dataclasses import dataclass, field

import mido
import pytest
from faust.types import TP

from agents.stage import Stage
from config.settings import Settings
from models.midi_event import encode_events
from tests.recording_backend import read_recording
from tests.topic_values import end_record, song_record

NOTES = Settings(outputs=("log",), song_idle_timeout=0)


def seqs(table) -> dict[str, int]:
    """The table's resume points as their seqs."""
    return {song: point.seq for song, point in table.items()}

# Buffered into the port of the fixture's backend.
BUFFERED = Settings(outputs=("port",), playback="buffered", playout_delay=0.05, song_idle_timeout=0)
REFUSED_NOTE = 66


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
    assert seqs(table) == {"a": 3}
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


@pytest.fixture
def port_backend(recording, monkeypatch):
    """The port the stage opens is the crashing recording backend's (tests/crashing_backend.py): it
    records what it is sent in ``recording`` and refuses the note-on of REFUSED_NOTE, as a port whose
    device vanished would."""
    monkeypatch.setenv("RECORDING_BACKEND_FILE", str(recording))
    monkeypatch.setenv("CRASHING_BACKEND_NOTE", str(REFUSED_NOTE))
    previous = mido.backend
    mido.set_backend("tests.crashing_backend", load=True)
    try:
        yield recording
    finally:
        mido.set_backend(previous)


def note_ons(recording) -> list[list[int]]:
    if not recording.exists():
        return []
    return [entry["bytes"] for entry in read_recording(recording) if entry["bytes"][0] & 0xF0 == 0x90]


async def until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


class CrashOfTheAgent(Exception):
    """An exception escaping the agent's loop, as a bug would raise it."""


async def crashing_after(*events: Event):
    for event in events:
        yield event
    # Between the first note (due 0.05 s after it was read) and the second (0.55 s): a chord the port's
    # process is sending at the very moment of a crash may sound again in the next run.
    await asyncio.sleep(0.25)
    raise CrashOfTheAgent("the agent crashed")


async def test_a_song_abandoned_on_a_failing_output_lets_its_records_go_and_its_partition_is_acknowledged_past_them(
        port_backend):
    # Song a fails on its second note with two records still queued; song b's records, read after them
    # from the same partition, may be acknowledged only once a's are: held back, a's would hold b's
    # too and the partition's committed offset would stop for good.
    stage = Stage(BUFFERED, {}, [])
    partition = TP("midi", 0)
    acknowledged: list[int] = []
    records = [(b"a", song_record("a", 0, [(0.0, [0x90, 60, 90]), (0.1, [0x90, REFUSED_NOTE, 90]),
                                           (5.0, [0x90, 62, 90])])),
               (b"a", song_record("a", 3, [(6.0, [0x90, 63, 90])])),
               (b"b", song_record("b", 0, [(0.0, [0x91, 40, 90])])),
               (b"b", end_record("b", 1, 0.0))]
    finish = asyncio.Event()
    playing = asyncio.create_task(stage.play(events_of(
        *(Event(value, key, Message(partition, offset), acknowledged) for offset, (key, value) in enumerate(records)),
        then=finish)))
    await until(lambda: len(acknowledged) == len(records), timeout=2.0)
    finish.set()
    await playing

    assert acknowledged == [0, 1, 2, 3], "the partition's acknowledged offset stopped at the abandoned song"
    # The two songs' first notes share a slot: either may sound first.
    assert sorted(note_ons(port_backend)) == [[0x90, 60, 90], [0x91, 40, 90]]


async def test_a_crash_of_the_agent_hands_its_queued_songs_to_the_next_run_which_plays_them_on_time_and_lets_them_go(
        port_backend):
    # Faust restarts a crashed agent (a new run of Stage.play); the records queued in the old run's
    # player were dropped unacknowledged, so the partition's commits stopped until the worker restarted.
    table: dict[str, int] = {}
    stage = Stage(BUFFERED, table, [])
    partition = TP("midi", 0)
    acknowledged: list[int] = []
    records = [song_record("a", 0, [(0.0, [0x90, 60, 90]), (0.5, [0x90, 61, 90])]),
               song_record("a", 2, [(0.6, [0x90, 62, 90])])]
    with pytest.raises(CrashOfTheAgent):
        await stage.play(crashing_after(*(Event(value, b"a", Message(partition, offset), acknowledged)
                                          for offset, value in enumerate(records))))
    assert note_ons(port_backend) == [[0x90, 60, 90]], "the crash came after the first note only"
    assert acknowledged == []

    # The next run reads on: song b, played at once, must still be acknowledged after a's records.
    finish = asyncio.Event()
    restarted = asyncio.create_task(stage.play(events_of(
        Event(song_record("b", 0, [(0.0, [0x91, 40, 90])]), b"b", Message(partition, 2), acknowledged),
        Event(end_record("a", 3, 0.6), b"a", Message(partition, 3), acknowledged), then=finish)))
    await until(lambda: len(acknowledged) == 4, timeout=2.0)
    finish.set()
    await restarted

    assert sorted(note_ons(port_backend)) == [[0x90, 60, 90], [0x90, 61, 90], [0x90, 62, 90], [0x91, 40, 90]]
    assert acknowledged == [0, 1, 2, 3]
    assert seqs(table) == {"a": 3, "b": 0}
    played = {tuple(entry["bytes"]): entry["time"] for entry in read_recording(port_backend)}
    # On the song's own clock: 0.5 s after its first note, not whenever the next run began.
    assert played[(0x90, 61, 90)] - played[(0x90, 60, 90)] == pytest.approx(0.5, abs=0.03)


class CrashingObserver:
    """Told of what is played; raises on the chord holding ``note``, from inside the agent's loop."""

    def __init__(self, note: int) -> None:
        self.note = note

    def played(self, chord, played_at: float) -> None:
        if any(event.message[1] == self.note for event in chord):
            raise CrashOfTheAgent(f"observer refused note {self.note}")

    def finished(self, summary: dict) -> None:
        pass


async def test_the_record_the_agent_crashed_on_is_let_go_so_the_next_runs_records_are_acknowledged():
    stage = Stage(NOTES, {}, [], observer=CrashingObserver(note=61))
    partition = TP("midi", 0)
    acknowledged: list[int] = []
    with pytest.raises(CrashOfTheAgent):
        await stage.play(events_of(
            Event(song_record("a", 0, [(0.0, [0x90, 60, 90])]), b"a", Message(partition, 0), acknowledged),
            Event(song_record("a", 1, [(0.1, [0x90, 61, 90])]), b"a", Message(partition, 1), acknowledged)))

    await stage.play(events_of(
        Event(song_record("a", 2, [(0.2, [0x90, 62, 90])]), b"a", Message(partition, 2), acknowledged)))
    assert acknowledged == [0, 1, 2], "the record the agent crashed on held its partition's acknowledgements"


async def test_a_revoke_lets_the_revoked_partitions_queued_songs_go_at_once_silenced_and_unacknowledged(port_backend):
    # Faust waits, before the group may rebalance, for every record read to be acknowledged; a buffered
    # backlog is acknowledged only as it plays. Revoked, a partition's queued songs stop at once, their
    # notes released; their records stay unacknowledged, for the next owner to read again.
    table: dict[str, int] = {}
    stage = Stage(BUFFERED, table, [])
    revoked, kept = TP("midi", 0), TP("midi", 1)
    acknowledged: list[int] = []
    finish = asyncio.Event()
    playing = asyncio.create_task(stage.play(events_of(
        Event(song_record("goes", 0, [(0.0, [0x90, 60, 90]), (0.3, [0x90, 61, 90])]), b"goes",
              Message(revoked, 10), acknowledged),
        Event(song_record("stays", 0, [(0.0, [0x91, 40, 90]), (0.3, [0x91, 41, 90])]), b"stays",
              Message(kept, 20), acknowledged),
        then=finish)))
    await until(lambda: len(note_ons(port_backend)) == 2, timeout=2.0)

    assert stage.let_go_revoked({revoked}) == ["goes"]
    await until(lambda: 20 in acknowledged, timeout=2.0)
    await asyncio.sleep(0.1)
    finish.set()
    await playing

    assert acknowledged == [20], "only the record of the partition kept may be acknowledged"
    assert seqs(table) == {"goes": 0, "stays": 1}, "what was played before the revoke must be saved for the next owner"
    played = [entry["bytes"] for entry in read_recording(port_backend)]
    assert [0x90, 61, 90] not in played, "a revoked partition's song played on"
    assert [0x91, 41, 90] in played
    released = played[played.index([0x90, 60, 90]):]
    assert [0x80, 60, 64] in released or [0x90, 60, 0] in released, "the revoked song's note was left sounding"


async def test_only_the_agents_first_start_collects_every_generation_not_its_restart_after_a_crash():
    # A full collection takes ~30 ms in a started worker: at a restart, other partitions' songs may be sounding.
    full_collections = []

    def count(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 2:
            full_collections.append(info)

    stage = Stage(NOTES, {}, [], observer=CrashingObserver(note=61))
    partition = TP("midi", 0)
    gc.callbacks.append(count)
    try:
        with pytest.raises(CrashOfTheAgent):
            await stage.play(events_of(
                Event(song_record("a", 0, [(0.0, [0x90, 61, 90])]), b"a", Message(partition, 0), [])))
        first_start = len(full_collections)
        await stage.play(events_of(
            Event(song_record("a", 1, [(0.1, [0x90, 62, 90])]), b"a", Message(partition, 1), [])))
    finally:
        gc.callbacks.remove(count)

    assert first_start == 1
    assert len(full_collections) == 1, "the restart collected every generation again"
