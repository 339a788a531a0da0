"""The produce-midi command (command.py): reading MIDI files into timed events (midi_file.py, songs.py),
splitting a song into parts keyed on their own (parts.py), publishing them with the score's timing
(publish.py), passes for a standing canary (passes.py), and
ending the song in flight on Ctrl-C or SIGTERM (stopping.py).

Uses models, config, logs, terminal and playback's precise waits; never imports agents, outputs or web.
"""
