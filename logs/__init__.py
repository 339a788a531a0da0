"""What the app says in its logs when something keeps happening: aiokafka's complaints about a broker
that cannot be reached (broker_log.py), and one rate limit for every notice repeated (rate_limit.py).

Imports nothing of the app's commands, agents, playback or outputs.
"""
