"""The app's settings: every tunable, read once from the environment (settings.py).

Imports nothing of the app: everything else may import it.
"""
