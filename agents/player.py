"""The worker's agent: plays every event from the notes topic through the configured outputs."""
from __future__ import annotations

import logging

from midi_app import app, notes_topic, settings
from outputs import open_outputs
from playback.player import Player

logger = logging.getLogger(__name__)

# The agent's players, for the status timer; one while the agent runs.
active_players: list[Player] = []


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
