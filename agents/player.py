"""The worker's agent: plays every event from the notes topic through the configured outputs.

Whatever ends playing here (a stop, a crash of the agent, a partition moving to another worker in a
rebalance) leaves no note sounding: open_outputs silences everything on exit, and songs whose partition
this worker lost are released when the new assignment arrives.
"""
from __future__ import annotations

import logging
import time

import click
from faust.types import TP

from midi_app import app, notes_topic, played_seqs, settings
from outputs import PortError, SynthUnavailable, open_outputs
from playback.gc_pauses import GcPauses
from playback.player import Player
from playback.resume import InOrderAcks

logger = logging.getLogger(__name__)

# Songs remembered with their partition beyond those playing; past that, finished songs are forgotten.
FINISHED_SONG_PARTITIONS_KEPT = 1000

# The agent's players, for the status timer; one while the agent runs.
active_players: list[Player] = []


class SongPartitions:
    """The partition each song's records come from (the notes topic is keyed by song), so the songs
    of a partition that moved to another worker can be released here."""

    def __init__(self) -> None:
        self.partition_of: dict[str, TP] = {}

    def saw(self, key: bytes | None, tp: TP) -> None:
        if key is not None:
            self.partition_of[key.decode(errors="replace")] = tp

    def songs_not_in(self, assigned: set[TP]) -> list[str]:
        return [song for song, tp in self.partition_of.items() if tp not in assigned]

    def keep_only(self, songs: set[str]) -> None:
        self.partition_of = {song: tp for song, tp in self.partition_of.items() if song in songs}


song_partitions = SongPartitions()


def playing_songs(player: Player) -> set[str]:
    return set(player.songs) | set(player.outputs.sounding)


@app.on_worker_init.connect
def check_outputs(sender, **kwargs) -> None:
    """Refuse to start when an output cannot open: Faust would restart the agent every few seconds
    forever, printing a traceback each time, and a missing port or synth does not come back by itself."""
    # Faust sends this signal for every command of the app; only the worker plays.
    command = click.get_current_context(silent=True)
    if command is None or command.info_name != "worker":
        return
    try:
        with open_outputs(settings):
            pass
    except (PortError, SynthUnavailable) as exc:
        raise SystemExit(f"midi_app worker: cannot play: {exc}") from None


@app.on_partitions_assigned.connect
async def release_moved_songs(sender, assigned: set[TP], **kwargs) -> None:
    """Release the songs whose partition now belongs to another worker, which plays the rest of them.

    Done on assignment rather than on revocation: a rebalance revokes every partition first, and the
    songs of partitions that stay here must keep sounding.
    """
    moved = song_partitions.songs_not_in(assigned)
    for player in active_players:
        released = [song for song in moved if song in player.outputs.sounding or song in player.queues]
        for song in released:
            player.abandon(song)
        if released:
            logger.info("released %d song(s) whose partition moved to another worker: %s",
                        len(released), ", ".join(released))
    song_partitions.keep_only(set().union(*map(playing_songs, active_players)) - set(moved))


@app.agent(notes_topic)
async def play(records):
    # Leaving this block for any reason, an exception included, silences the outputs before Faust
    # restarts the agent.
    with open_outputs(settings) as outputs, gc_pauses:
        player = Player(outputs, playback=settings.playback, playout_delay=settings.playout_delay,
                        max_lateness=settings.max_lateness, played_seqs=played_seqs,
                        max_record_bytes=settings.max_record_bytes, max_song_seconds=settings.max_song_seconds,
                        song_idle_timeout=settings.song_idle_timeout)
        active_players.append(player)
        app.commit_listeners.append(player.resume_points.committed)
        try:
            # The player lets each record go once it has been played, and the records of a partition
            # are acknowledged in the order read, so the offset committed never passes a note not yet
            # played, however long the playout buffer holds it.
            in_order = InOrderAcks()
            async for event in records.noack().events():
                tp = event.message.tp
                song_partitions.saw(event.key, tp)
                player.handle(event.value, done=in_order.track(tp, event.ack), position=(tp, event.message.offset))
                if len(song_partitions.partition_of) > FINISHED_SONG_PARTITIONS_KEPT + len(player.songs):
                    song_partitions.keep_only(playing_songs(player))
        finally:
            app.commit_listeners.remove(player.resume_points.committed)
            active_players.remove(player)
            await player.stop()


class KafkaLoad:
    """What the worker asks of the broker between two status lines: fetches by the wait they were sent
    with (adjustments.fetch_wait) and resume-point writes, per second."""

    def __init__(self) -> None:
        self.fetches: dict[str, int] = {}
        self.writes = 0
        self.at = time.monotonic()

    def line(self, fetches: dict[str, int], writes: int) -> str:
        now = time.monotonic()
        elapsed = max(now - self.at, 1e-9)
        rates = ", ".join(f"{(count - self.fetches.get(state, 0)) / elapsed:.0f} {state}"
                          for state, count in fetches.items())
        written = (writes - self.writes) / elapsed
        self.fetches, self.writes, self.at = dict(fetches), writes, now
        return f"fetches/s: {rates}; resume-point writes/s: {written:.1f}"


kafka_load = KafkaLoad()
gc_pauses = GcPauses()


@app.timer(interval=settings.status_interval)
async def report_status() -> None:
    for player in active_players:
        logger.info("status: %s", player.status())
    if app.fetch_wait is not None:
        writes = sum(player.resume_points.writes for player in active_players)
        collections, longest = gc_pauses.take()
        logger.info("kafka load: %s; garbage collections: %d, longest %.2f ms",
                    kafka_load.line(app.fetch_wait.fetches, writes), collections, longest * 1000)
