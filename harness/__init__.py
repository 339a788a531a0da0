"""Running the app's two commands as a user would: for `make run` (demo.py), the tests and the benchmarks.

Starts `faust -A midi_app ...` in child processes; imports nothing of the app's own modules but the
settings it passes on.
"""
