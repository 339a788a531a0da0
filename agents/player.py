"""The worker's agent: plays every event from the notes topic through the configured outputs."""
from __future__ import annotations

import logging

from midi_app import app, notes_topic, settings
from outputs import PortError, SynthUnavailable, open_outputs
from playback.player import Player

logger = logging.getLogger(__name__)

# The agent's players, for the status timer; one while the agent runs.
active_players: list[Player] = []


@app.on_worker_init.connect
def check_outputs(sender, **kwargs) -> None:
    """Refuse to start when an output cannot open: Faust would restart the agent every few seconds
    forever, printing a traceback each time, and a missing port or synth does not come back by itself."""
    try:
        with open_outputs(settings):
            pass
    except (PortError, SynthUnavailable) as exc:
        raise SystemExit(f"midi_app worker: cannot play: {exc}") from None


@app.agent(notes_topic)
async def play(records):
    with open_outputs(settings) as outputs:
        player = Player(outputs, playback=settings.playback, playout_delay=settings.playout_delay,
                        max_lateness=settings.max_lateness)
        active_players.append(player)
        try:
            async for raw in records:
                player.handle(raw)
        finally:
            active_players.remove(player)
            await player.stop()


@app.timer(interval=settings.status_interval)
async def report_status() -> None:
    for player in active_players:
        logger.info("status: %s", player.status())
