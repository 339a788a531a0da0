"""playback.resume: resume points saved as events play, records let go once done, and in read order."""
from __future__ import annotations

import asyncio
import time

from models.midi_event import MidiEvent
from models.resume_point import ResumePoint
from playback.resume import InOrderAcks, RecordProgress, ResumePoints


def event(song: str, seq: int) -> MidiEvent:
    return MidiEvent(song=song, seq=seq, score_time=0.0, message=[0x90, 60, 90], sent_at=0.0)


def seqs(table) -> dict[str, int]:
    return {song: point.seq for song, point in table.items()}


def test_each_event_of_a_record_is_saved_as_it_plays_and_the_record_let_go_when_all_of_it_is():
    table: dict[str, int] = {}
    acknowledged: list[str] = []
    record = RecordProgress(ResumePoints(table), done=lambda: acknowledged.append("record"))
    record.wait_for()
    record.wait_for()
    record.finished_one()  # handed over whole, its two events waiting for their slots

    record.handled(event("a", 0))
    record.finished_one()
    assert seqs(table) == {"a": 0}, "a worker killed now would play seq 0 again"
    assert acknowledged == []

    record.handled(event("a", 1))
    record.finished_one()
    assert seqs(table) == {"a": 1}
    assert acknowledged == ["record"]


def test_an_older_copy_does_not_move_a_resume_point_back():
    table = {"a": 5}
    points = ResumePoints(table)
    points.played("a", 3)
    assert points.get("a") == 5 and table == {"a": 5}
    points.played("a", 6)
    assert seqs(table) == {"a": 6}
    points.played("a", 4)
    assert points.get("a") == 6 and seqs(table) == {"a": 6}


async def test_records_are_let_go_only_after_their_events_are_saved():
    table: dict[str, int] = {}
    acknowledged: list[int] = []
    points = ResumePoints(table, save_interval=0.05)
    points.played("a", 0)  # the first save is due at once
    await asyncio.sleep(0.01)
    points.played("a", 1)
    points.acknowledge_once_saved(lambda: acknowledged.append(1))
    await asyncio.sleep(0.01)
    assert (seqs(table), acknowledged) == ({"a": 0}, [])

    await asyncio.sleep(0.06)
    assert (seqs(table), acknowledged) == ({"a": 1}, [1])


def test_a_partition_s_records_are_acknowledged_in_the_order_read_whatever_order_they_finish():
    acknowledged: list[tuple[str, int]] = []
    acks = InOrderAcks()

    def track(partition: str, offset: int):
        return acks.track(partition, lambda: acknowledged.append((partition, offset)))
    first, second, third = (track("p0", offset) for offset in range(3))
    other = track("p1", 0)

    third()
    second()
    other()
    assert acknowledged == [("p1", 0)], "p0's records must wait for its first one; p1 need not"
    first()
    assert acknowledged == [("p1", 0), ("p0", 0), ("p0", 1), ("p0", 2)]
    assert all(not waiting for waiting in acks.waiting.values())


def test_a_finished_song_leaves_the_table_once_the_group_commits_past_the_record_that_ended_it():
    table = {"done": 40, "other": 7, "playing": 3}
    points = ResumePoints(table)
    points.forget_once_committed("done", ("midi-0", 12))
    points.forget_once_committed("other", ("midi-1", 5))

    points.committed({"midi-0": 12})
    assert "done" in table, "offset 12 is the next to read: the end record may be read again"
    points.committed({"midi-0": 13, "midi-1": 3})
    assert table == {"other": 7, "playing": 3}
    points.committed({"midi-1": 6})
    assert table == {"playing": 3}
    assert points.forgotten == 2


def test_a_saved_point_says_when_and_by_which_worker_and_an_older_worker_s_bare_seq_still_reads():
    table: dict = {"old": 7}
    points = ResumePoints(table, worker="here:1")
    before = time.time()
    points.played("a", 3)
    [point] = [table["a"]]
    assert (point.seq, point.worker) == (3, "here:1")
    assert before <= point.played_at <= time.time()
    assert points.get("old") == 7 and points.point("old") == ResumePoint(seq=7)


def test_a_song_is_taken_over_only_from_another_worker_and_only_until_this_one_plays_it():
    table = {"theirs": ResumePoint(seq=4, played_at=100.0, worker="there:2"),
             "mine": ResumePoint(seq=4, played_at=100.0, worker="here:1")}
    points = ResumePoints(table, worker="here:1")

    assert points.taken_over("theirs") == table["theirs"]
    assert points.taken_over("mine") is None, "this worker's own point is a resume, not a handover"
    assert points.taken_over("unknown") is None
    points.played("theirs", 5)
    assert points.taken_over("theirs") is None


def test_the_table_as_midi_app_declares_it_reads_its_changelog_old_and_new():
    # What a worker recovering the table does with each changelog value (Faust's loads_value with the
    # table's value type and serializer): an older worker's bare int, and today's point.
    from midi_app import app, played_seqs

    def read(raw: bytes):
        return app.serializers.loads_value(played_seqs.value_type, raw, serializer=played_seqs.value_serializer)

    assert read(b"12") == ResumePoint(seq=12)
    written = app.serializers.dumps_value(played_seqs.value_type, ResumePoint(seq=3, played_at=1.5, worker="h:9"),
                                          serializer=played_seqs.value_serializer)
    assert read(written) == ResumePoint(seq=3, played_at=1.5, worker="h:9")


def test_a_revoked_partition_s_records_read_so_far_are_never_acknowledged_and_later_ones_are_tracked_afresh():
    acknowledged: list[tuple[str, int]] = []
    acks = InOrderAcks()
    queued = acks.track("p0", lambda: acknowledged.append(("p0", 0)))
    played = acks.track("p0", lambda: acknowledged.append(("p0", 1)))
    other = acks.track("p1", lambda: acknowledged.append(("p1", 0)))

    acks.forget(["p0"])
    played()
    queued()
    assert acknowledged == [], "a revoked partition's record was acknowledged: the group could commit past it"
    again = acks.track("p0", lambda: acknowledged.append(("p0", "read again")))
    again()
    other()
    assert acknowledged == [("p0", "read again"), ("p1", 0)]
