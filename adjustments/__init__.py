"""Adjustments to how Faust drives aiokafka, one module each: what the library does, what changes, why,
where upstream, and which private names it touches (its ``ADJUSTMENT``).

fetch_wait, changelog_pause, commits, thread_close, reachability, patient_producer, flow_control; app.py
mixes them into Faust's classes and the worker checks their names at start (tripwire.py).
Imports nothing of the app's commands, agents, playback or outputs (but playback's process-wide helpers:
garbage collection, real-time priority, the heap).
"""
