"""web/feed.py, web/performance.py and web/metrics.py: what the page and /metrics get of songs played by a
real Stage (agents/stage.py) in-process, read back with Prometheus' own parser."""
from __future__ import annotations

import asyncio

from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.stage import Stage
from config.settings import Settings
from tests.test_stage import Event, Message, events_of
from tests.topic_values import end_record, song_record
from web.feed import PerformanceFeed
from web.metrics import AppMetrics
from web.performance import Performance, RunningMedian

SILENT = Settings(outputs=("null",), song_idle_timeout=0)


def samples(registry: CollectorRegistry) -> dict[tuple, float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples}


def performance_of_stage() -> tuple[Stage, Performance, CollectorRegistry]:
    stage = Stage(SILENT, {}, [])
    feed = PerformanceFeed()
    stage.observe(feed)
    registry = CollectorRegistry()
    return stage, Performance(feed, stage, AppMetrics(registry, "midi_app")), registry


async def test_the_page_gets_every_note_played_and_metrics_count_what_the_summary_counts():
    stage, performance, registry = performance_of_stage()
    partition = TP("midi", 1)
    # seq 2 arrives after 3 (reordered), 3 twice (a duplicate), 4 never (lost).
    values = [song_record("a", 0, [(0.0, [0x90, 60, 90]), (0.0, [0xB0, 64, 127])]),
              song_record("a", 3, [(0.2, [0x80, 60, 0])]), song_record("a", 2, [(0.1, [0x91, 62, 80])]),
              song_record("a", 3, [(0.2, [0x80, 60, 0])]), song_record("a", 5, [(0.3, [0x81, 62, 0])]),
              end_record("a", 6, 0.3)]
    await stage.play(events_of(*(Event(value, b"a", Message(partition, offset))
                                 for offset, value in enumerate(values))))

    taken = performance.take()

    [song] = taken["songs"]
    assert {key: song[key] for key in ("events", "notes", "lost", "duplicates", "reordered", "ended", "partition")} \
        == {"events": 5, "notes": 4, "lost": 1, "duplicates": 1, "reordered": 1, "ended": "end event", "partition": "1"}
    assert [(channel, key, velocity) for _, _, channel, key, velocity, _ in taken["notes"]] == [
        (0, 60, 90), (0, 60, 0), (1, 62, 80), (1, 62, 0)]
    series = samples(registry)
    labels = (("partition", "1"), ("topic", "midi"))
    assert series[("midi_note_latency_seconds_count", labels)] == 5
    assert series[("midi_events_played_total", labels)] == 5
    assert series[("midi_events_lost_total", labels)] == 1
    assert series[("midi_events_duplicated_total", labels)] == 1
    assert series[("midi_events_reordered_total", labels)] == 1
    assert performance.take()["notes"] == [], "what was taken is not taken again"


async def test_counters_grow_while_a_song_plays_and_lost_waits_for_its_end():
    stage, performance, registry = performance_of_stage()
    partition = TP("midi", 0)
    values = [song_record("b", 0, [(0.0, [0x90, 60, 90])]), song_record("b", 2, [(0.1, [0x80, 60, 0])]),
              song_record("b", 2, [(0.1, [0x80, 60, 0])])]
    events = [Event(value, b"b", Message(partition, offset)) for offset, value in enumerate(values)]

    finish = asyncio.Event()
    playing = asyncio.create_task(stage.play(events_of(*events, then=finish)))
    await asyncio.sleep(0.05)
    [song] = performance.take()["songs"]
    series = samples(registry)
    finish.set()
    await playing

    labels = (("partition", "0"), ("topic", "midi"))
    assert (song["lost"], song["duplicates"], song["ended"]) == (1, 1, None)
    assert series[("midi_events_duplicated_total", labels)] == 1
    assert ("midi_events_lost_total", labels) not in series, "a gap may still fill while the song plays"


def test_the_feed_is_bounded_and_counts_what_it_lost():
    feed = PerformanceFeed(capacity=3)
    for index in range(5):
        feed.played((), float(index))
    assert feed.overflowed == 2
    assert [played_at for played_at, _ in feed.take()] == [2.0, 3.0, 4.0]


def test_the_running_median_is_the_median_of_everything_added():
    median = RunningMedian()
    assert [median.add(value) for value in (5.0, 1.0, 3.0, 10.0, 2.0)] == [5.0, 3.0, 3.0, 4.0, 3.0]
