"""The worker's agent: plays every event from the notes topic through the configured outputs."""
from __future__ import annotations

import logging

from midi_app import app, notes_topic, settings
from outputs import open_outputs
from playback.player import Player

logger = logging.getLogger(__name__)

current_player: list[Player] = []


@app.agent(notes_topic)
async def play(records):
    with open_outputs(settings) as outputs:
        player = Player(outputs)
        current_player.append(player)
        try:
            async for raw in records:
                player.handle(raw)
        finally:
            current_player.remove(player)


@app.timer(interval=settings.status_interval)
async def report_status() -> None:
    for player in current_player:
        logger.info("status: %s", player.status())
