"""The wire format, declared once (midi_event.py): the MidiEvent Record, how events are packed into a
record and read back, and the checks a message must pass.

Imports nothing of the app: the producer, playback, the tests and the benchmarks all import it.
"""
