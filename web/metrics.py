"""The worker's figures in Prometheus' terms, served at /metrics beside Faust's own sensor.

Names follow Prometheus' conventions (seconds, ``_total`` counters); the consumer's lag and offsets
are named as kafka_exporter names them (``kafka_consumergroup_lag{consumergroup,topic,partition}``),
so dashboards and alerts written for it read this worker too. Counters are labelled by topic and
partition, never by song: songs are unbounded, and every label value is a series kept for ever.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Sub-millisecond steps where live timing lives (p99 ~2 ms), then up past a buffered playout delay
# (0.2 s) to seconds, where a stalled cluster puts its notes.
SECONDS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075,
                   0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.205, 0.21, 0.25, 0.3, 0.5,
                   1.0, 2.5, 5.0, 10.0, 30.0)
# What the song book counts per event besides playing it: the summary's fields of the same names.
COUNTED = ("lost", "duplicates", "reordered", "late", "dropped")
PARTITION_LABELS = ("topic", "partition")


class AppMetrics:
    """The app's series, registered in ``registry`` (one per app, so tests may build several)."""

    def __init__(self, registry: CollectorRegistry, group: str) -> None:
        self.registry = registry
        self.group = group
        self.latency = Histogram(
            "midi_note_latency_seconds", "Producer send to output, per event played (both wall clocks)",
            PARTITION_LABELS, buckets=SECONDS_BUCKETS, registry=registry)
        self.timing_error = Histogram(
            "midi_timing_error_seconds",
            "|played time - score time - the song's median offset so far|, per event played with score timing",
            PARTITION_LABELS, buckets=SECONDS_BUCKETS, registry=registry)
        self.played = Counter("midi_events_played", "MIDI events sent to the outputs",
                              PARTITION_LABELS, registry=registry)
        self.counted = {
            "lost": Counter("midi_events_lost", "Sequence numbers never seen, added when their song ends",
                            PARTITION_LABELS, registry=registry),
            "duplicates": Counter("midi_events_duplicated", "Events seen again, not played again",
                                  PARTITION_LABELS, registry=registry),
            "reordered": Counter("midi_events_reordered", "Events that arrived after a later one of their song",
                                 PARTITION_LABELS, registry=registry),
            "late": Counter("midi_events_late", "Buffered: events that arrived after their playout slot",
                            PARTITION_LABELS, registry=registry),
            "dropped": Counter("midi_events_dropped", "Events older than MIDI_MAX_LATENESS, not played",
                               PARTITION_LABELS, registry=registry),
        }
        group_labels = ("consumergroup", "topic", "partition")
        self.lag = Gauge("kafka_consumergroup_lag", "End offset minus the worker's position, polled from the broker",
                         group_labels, registry=registry)
        self.position = Gauge("kafka_consumergroup_current_offset", "The worker's position: next offset to play",
                              group_labels, registry=registry)
        self.end_offset = Gauge("kafka_topic_partition_current_offset", "The partition's end offset on the broker",
                                PARTITION_LABELS, registry=registry)
        self.reachable = Gauge("midi_broker_reachable", "1 while the broker answers, 0 while it does not",
                               registry=registry)
        self.unreachable_since = Gauge("midi_broker_unreachable_since_seconds",
                                       "Unix time the broker stopped answering; 0 while it answers",
                                       registry=registry)
        self.updates_dropped = Counter("midi_web_updates_dropped", "Page updates dropped for clients that read slowly",
                                       registry=registry)
        self.feed_overflowed = Gauge("midi_web_feed_overflowed", "Played chords the web layer lost to a stalled timer",
                                     registry=registry)

    def observe_played(self, topic: str, partition: str, latencies: list[float], errors: list[float]) -> None:
        labels = (topic, partition)
        self.played.labels(*labels).inc(len(latencies))
        latency = self.latency.labels(*labels)
        for seconds in latencies:
            latency.observe(seconds)
        timing_error = self.timing_error.labels(*labels)
        for seconds in errors:
            timing_error.observe(seconds)

    def count(self, kind: str, topic: str, partition: str, amount: int) -> None:
        if amount > 0:
            self.counted[kind].labels(topic, partition).inc(amount)

    def partition(self, topic: str, partition: int, position: int | None, end: int | None, lag: int | None) -> None:
        labels = (self.group, topic, str(partition))
        if position is not None:
            self.position.labels(*labels).set(position)
        if end is not None:
            self.end_offset.labels(topic, str(partition)).set(end)
        if lag is not None:
            self.lag.labels(*labels).set(lag)

    def broker(self, reachable: bool, unreachable_since: float | None) -> None:
        self.reachable.set(1 if reachable else 0)
        self.unreachable_since.set(unreachable_since or 0)

    def forget_partition(self, topic: str, partition: int) -> None:
        """A partition no longer assigned here: its gauges go, rather than stand at their last value."""
        for gauge in (self.lag, self.position):
            try:
                gauge.remove(self.group, topic, str(partition))
            except KeyError:
                pass
        try:
            self.end_offset.remove(topic, str(partition))
        except KeyError:
            pass

    def as_dict(self) -> dict:
        """Every series of the registry (Faust's sensor's too), for /stats: name -> [{labels, value}]."""
        return {sample_family.name: [{"name": sample.name, "labels": sample.labels, "value": sample.value}
                                     for sample in sample_family.samples]
                for sample_family in self.registry.collect()}
