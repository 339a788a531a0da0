"""The worker's agent: plays every event from the notes topic through the configured outputs.

Whatever ends playing here (a stop, a crash of the agent, a partition moving to another worker in a
rebalance) leaves no note sounding: the stage silences its outputs on exit, buffered songs queued on
revoked partitions stop at the revoke, and songs whose partition this worker lost are released when
the new assignment arrives. The state lives in one object, the app's ``stage`` (agents/stage.py).
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import click
from faust.types import TP

from agents.stage import Stage
from midi_app import app, notes_topic, played_seqs, settings
from outputs import PortError, SynthUnavailable, open_outputs
import web

logger = logging.getLogger(__name__)

app.stage = Stage(settings, played_seqs, app.commit_listeners)
# The page, /stats and /metrics (web/), for a worker that serves the web.
app.live_view = web.install(app, app.stage, settings)


@app.on_worker_init.connect
def check_outputs(sender, **kwargs) -> None:
    """Refuse to start when an output cannot open: Faust would restart the agent every few seconds
    forever, printing a traceback each time, and a missing port or synth does not come back by itself."""
    # Faust sends this signal for every command of the app; only the worker plays.
    command = click.get_current_context(silent=True)
    if command is None or command.info_name != "worker":
        return
    try:
        # Quietly: the agent opens them again a moment later and says then what was chosen (a fallback's
        # warning, the port's name); said here too, every warning reached the console twice.
        with only_errors_from("outputs"), open_outputs(settings):
            pass
    except (PortError, SynthUnavailable) as exc:
        raise SystemExit(f"midi_app worker: cannot play: {exc}") from None


@contextmanager
def only_errors_from(name: str) -> Iterator[None]:
    """Hold back the logger ``name``'s (and its children's) records below ERROR meanwhile."""
    chosen = logging.getLogger(name)
    level = chosen.level
    chosen.setLevel(logging.ERROR)
    try:
        yield
    finally:
        chosen.setLevel(level)


@app.on_partitions_revoked.connect
async def let_go_revoked_songs(sender, revoked: set[TP], **kwargs) -> None:
    """A rebalance starts: let the buffered songs of the revoked partitions go at once, and have what
    they played saved before the group moves on (midi_app.py turns Faust's wait for them off)."""
    if app.stage.let_go_revoked(revoked):
        await app.producer.flush()


@app.on_partitions_assigned.connect
async def release_moved_songs(sender, assigned: set[TP], **kwargs) -> None:
    notes = sorted(tp.partition for tp in assigned if tp.topic == notes_topic.get_topic_name())
    logger.info("assigned partition(s) %s of %s", ", ".join(map(str, notes)) or "none", notes_topic.get_topic_name())
    app.stage.release_moved_songs(assigned)
    # Which parts of the orchestra this worker plays from now on (its songs' summaries name the partition).
    notes = sorted(tp.partition for tp in assigned if tp.topic == notes_topic.get_topic_name())
    logger.info("notes partitions assigned: %s", ", ".join(map(str, notes)))


@app.agent(notes_topic)
async def play(records):
    await app.stage.play(records.noack().events())


@app.timer(interval=settings.status_interval)
async def report_status() -> None:
    for line in app.stage.status_lines(app.fetch_wait.fetches if app.fetch_wait is not None else None):
        logger.info(line)
