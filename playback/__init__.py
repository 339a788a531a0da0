"""Playing what arrives: decoding records (decoder.py), dropping duplicates and resuming after a restart
(resume.py), scheduling each event live or on a buffered clock, the producer's (playout.py, timing.py), the per-song
figures and summary (stats.py), songs left idle (song_book.py), and the collector's pauses (gc_pauses.py);
player.py ties them together for the agent.

Uses models, outputs, config and logs; never imports the agents, the commands, Faust's adjustments or web.
"""
