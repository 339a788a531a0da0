"""Adjustments to how Faust drives aiokafka, one module each: what the library does, what changes, why.

Used by the app's transport (transport.py); imports nothing of the app's commands, agents or playback.
"""
