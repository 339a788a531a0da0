"""The wire format, declared once (midi_event.py): the MidiEvent Record, how events are packed into a
record and read back, and the checks a message must pass. Also the value of the played_seqs table
(resume_point.py): a song's resume point and who played up to it.

Imports nothing of the app: the producer, playback, the tests and the benchmarks all import it.
"""
