"""The worker's agent: consumes the notes topic and hands each record to playback (player.py declares
it on the app; stage.py owns what one run of the agent holds: outputs, player, web view, resume acks).

Uses playback, outputs, web and the app's declarations in midi_app.py; nothing imports it but midi_app.
"""
