"""The table ``make run`` ends with: how every song was played, and where the recording of it is."""
from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.table import Table

from playback.stats import readable_figures

# Wide enough for a song id and every figure on one line, where there is no terminal to ask.
PLAIN_WIDTH = 132


def song_table(summaries: list[dict], recordings: list[str] = ()) -> Table:
    """A row per song summary (the worker's ``song summary`` JSON), in the order given; ``recordings``
    (``performance.wav: 31.9 s of audio``) go beneath it."""
    table = Table(caption="\n".join(recordings) or None, caption_justify="left")
    table.add_column("song")
    for name in readable_figures(summaries[0]) if summaries else ():
        table.add_column(name, justify="right")
    for summary in summaries:
        table.add_row(summary["song"], *readable_figures(summary).values())
    return table


def print_song_table(stream: TextIO, terminal: bool, summaries: list[dict], recordings: list[str] = ()) -> None:
    console = Console(file=stream, force_terminal=terminal, width=None if terminal else PLAIN_WIDTH)
    console.print(song_table(summaries, recordings))
